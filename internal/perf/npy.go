package perf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteNPY writes a little-endian float32 or int32 array of the given shape
// in NumPy's .npy format (version 1.0), for tools outside Go (the peers'
// ONNX Runtime and numpy runners) to read the same inputs and compare
// scores.
func WriteNPY[T float32 | int32](w io.Writer, data []T, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("write npy: %d values for shape %v", len(data), shape)
	}
	descr := "<f4"
	if _, ok := any(data).([]int32); ok {
		descr = "<i4"
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// Magic, version, header length, header padded with spaces to a
	// multiple of 64 bytes and ended by a newline.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	buf := make([]byte, 0, 10+len(header)+4*len(data))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for _, v := range data {
		switch v := any(v).(type) {
		case float32:
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		case int32:
			buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	return nil
}
