package bundle

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/nlpodyssey/safetensors"
)

// encodeWeights serialises the weights as little-endian F32 safetensors.
func (bu *Bundle) encodeWeights() ([]byte, error) {
	views := make(map[string]safetensors.TensorView, len(bu.Weights))
	for name, p := range bu.Weights {
		data := make([]byte, 4*len(p.Data))
		for i, v := range p.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		shape := make([]uint64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = uint64(d)
		}
		tv, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			return nil, fmt.Errorf("encode tensor %q: %w", name, err)
		}
		views[name] = tv
	}
	meta := map[string]string{"format": "scorer", "name": bu.Name, "version": bu.Version}
	out, err := safetensors.Serialize(views, meta)
	if err != nil {
		return nil, fmt.Errorf("encode weights: %w", err)
	}
	return out, nil
}

// decodeWeights parses a safetensors file of F32 tensors.
func decodeWeights(data []byte) (map[string]*Param, error) {
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a safetensors file: %w", ErrInvalid, err)
	}
	out := make(map[string]*Param, st.Len())
	for _, nt := range st.Tensors() {
		tv := nt.TensorView
		if tv.DType() != safetensors.F32 {
			return nil, fmt.Errorf("%w: tensor %q has dtype %s, want F32", ErrInvalid, nt.Name, tv.DType())
		}
		p := &Param{Shape: make([]int, len(tv.Shape()))}
		for i, d := range tv.Shape() {
			if d > math.MaxInt32 {
				return nil, fmt.Errorf("%w: tensor %q has shape %v", ErrInvalid, nt.Name, tv.Shape())
			}
			p.Shape[i] = int(d)
		}
		raw := tv.Data()
		if len(raw) != 4*p.Size() {
			return nil, fmt.Errorf("%w: tensor %q has %d bytes, want %d for shape %v", ErrInvalid, nt.Name, len(raw), 4*p.Size(), p.Shape)
		}
		p.Data = float32View(raw)
		if p.Data == nil {
			p.Data = make([]float32, p.Size())
			for i := range p.Data {
				p.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		}
		out[nt.Name] = p
	}
	return out, nil
}

// float32View returns the little-endian float32 values in b without copying
// them, on a little-endian machine when b is 4-byte aligned; nil otherwise.
// Loading a bundle then holds its weights once, in the file's own buffer,
// not twice (a copy would double the peak memory of a run: ctr-mlp's
// embeddings are 109 MB).
func float32View(b []byte) []float32 {
	if len(b) == 0 || len(b)%4 != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil
	}
	var probe uint32 = 1
	if *(*byte)(unsafe.Pointer(&probe)) != 1 { // big-endian
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}
