package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/readers/store"
)

// referenceFormat is the version of the reference.json layout.
const referenceFormat = 1

// TimestampLayout is how a reference row writes a timestamp value: RFC
// 3339 in UTC with microseconds, the precision of the input schema's
// timestamp[us] columns. Any RFC 3339 time is read back.
const TimestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// ReferenceRow is one row of the data a model was trained (or imported)
// with, as the pipeline and the model computed it then: the skew guard
// (package scoring) recomputes it at every load and compares.
type ReferenceRow struct {
	// DataRow is the row's position in the data it was taken from (0-based,
	// files in key order, good rows only); for people, not checked.
	DataRow int64 `json:"data_row"`
	// Values are the row's raw input values by input column (every column
	// of the spec's InputSchema, ids and label left out), as JSON: a
	// number for numeric and ids columns, a string for string columns, a
	// TimestampLayout string for timestamp columns, null for a missing
	// value. Kept as written so that no value is rounded on the way.
	Values map[string]json.RawMessage `json:"values"`
	// Dense and Cat are the row's model inputs (features.Batch) as the
	// feature pipeline computed them: D float32 values, K int32 indices.
	Dense []float32 `json:"dense"`
	Cat   []int32   `json:"cat"`
	// ImageEmb are the row's image embeddings (I·E values) as the image
	// tower computed them from its images, for a model with image inputs:
	// the skew guard scores the row with them (it has no images), and
	// checks the tower itself on ImageProbe.
	ImageEmb []float32 `json:"image_emb,omitempty"`
	// Score is the model's click probability for the row.
	Score float32 `json:"score"`
}

// referenceFile is the layout of reference.json.
type referenceFile struct {
	Format int            `json:"format"`
	Rows   []ReferenceRow `json:"rows"`
	// ImageProbe is Bundle.ImageProbe.
	ImageProbe []float32 `json:"image_probe,omitempty"`
}

// loadReference reads the bundle's reference rows, if it has a
// reference.json (a bundle written before there were any has none).
func (bu *Bundle) loadReference(ctx context.Context, b store.Bucket, prefix string) error {
	key := store.Join(prefix, ReferenceFile)
	data, err := store.ReadAll(ctx, b, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var rf referenceFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return fmt.Errorf("decode %s: %w: %w", b.URI(key), ErrInvalid, err)
	}
	if rf.Format != referenceFormat {
		return fmt.Errorf("%s: %w: format %d, want %d", b.URI(key), ErrInvalid, rf.Format, referenceFormat)
	}
	if len(rf.Rows) > 0 {
		bu.Reference = rf.Rows
	}
	bu.ImageProbe = rf.ImageProbe
	if err := bu.checkReference(); err != nil {
		return fmt.Errorf("%s: %w", b.URI(key), err)
	}
	return nil
}

// encodeReference is reference.json: one row a line, so that a person can
// read it and a diff shows which row changed.
func (bu *Bundle) encodeReference() ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n  \"format\": %d,\n  \"rows\": [", referenceFormat)
	for i, r := range bu.Reference {
		row, err := marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode %s: row %d: %w", ReferenceFile, i+1, err)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		buf.Write(row)
	}
	if len(bu.Reference) > 0 {
		buf.WriteString("\n  ")
	}
	buf.WriteString("]")
	if len(bu.ImageProbe) > 0 {
		probe, err := marshal(bu.ImageProbe)
		if err != nil {
			return nil, fmt.Errorf("encode %s: image probe: %w", ReferenceFile, err)
		}
		buf.WriteString(",\n  \"image_probe\": ")
		buf.Write(probe)
	}
	buf.WriteString("\n}\n")
	return buf.Bytes(), nil
}

// checkReference checks that the reference rows fit the bundle: as many
// model inputs as it has, finite values, a score in [0, 1], and raw values
// that the input schema can read (ReferenceRecord). Errors wrap ErrInvalid
// and name the row (1-based).
func (bu *Bundle) checkReference() error {
	if len(bu.ImageProbe) > 0 && (bu.Arch.Image == nil || len(bu.ImageProbe) != bu.Arch.Image.Embedding || firstNonFinite(bu.ImageProbe) >= 0) {
		return fmt.Errorf("%w: image_probe has %d values, want the image tower's embedding of finite values", ErrInvalid, len(bu.ImageProbe))
	}
	if len(bu.Reference) == 0 {
		return nil
	}
	for i, r := range bu.Reference {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: reference row %d: %s", ErrInvalid, i+1, fmt.Sprintf(format, args...))
		}
		if len(r.Dense) != bu.Inputs.Dense || len(r.Cat) != bu.Inputs.K() {
			return bad("%d dense and %d categorical inputs, the model has %d and %d", len(r.Dense), len(r.Cat), bu.Inputs.Dense, bu.Inputs.K())
		}
		if j := firstNonFinite(r.Dense); j >= 0 {
			return bad("dense input %d is %g, want a finite number", j, r.Dense[j])
		}
		if w := bu.Arch.ImageWidth(bu.Inputs); len(r.ImageEmb) != w {
			return bad("%d image embedding values, the model has %d", len(r.ImageEmb), w)
		}
		if j := firstNonFinite(r.ImageEmb); j >= 0 {
			return bad("image embedding value %d is %g, want a finite number", j, r.ImageEmb[j])
		}
		if !(r.Score >= 0 && r.Score <= 1) {
			return bad("score %g, want a probability", r.Score)
		}
	}
	rec, err := bu.ReferenceRecord(memory.DefaultAllocator)
	if err != nil {
		return err
	}
	rec.Release()
	return nil
}

// ReferenceSchema is the schema of the reference rows' values: the input
// columns of the bundle's feature spec (with its defaults), without id
// columns or label.
func (bu *Bundle) ReferenceSchema() *arrow.Schema {
	spec := bu.Features
	spec.Features = slices.Clone(spec.Features)
	spec.SetDefaults()
	return spec.InputSchema(nil, false)
}

// ReferenceRecord is the reference rows' raw values as one record of the
// ReferenceSchema, row i being
// reference row i+1, built with mem. The caller releases it. A value that
// is missing, of the wrong JSON type, or for a column the spec does not
// read is an error wrapping ErrInvalid that names the row and the column.
func (bu *Bundle) ReferenceRecord(mem memory.Allocator) (arrow.RecordBatch, error) {
	schema := bu.ReferenceSchema()
	if len(bu.Reference) > 0 && schema.NumFields() == 0 {
		return nil, fmt.Errorf("%w: reference rows, but no feature spec to compute them with", ErrInvalid)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, r := range bu.Reference {
		for _, name := range slices.Sorted(maps.Keys(r.Values)) {
			if len(schema.FieldIndices(name)) == 0 {
				return nil, fmt.Errorf("%w: reference row %d: column %q is not an input of the feature spec", ErrInvalid, i+1, name)
			}
		}
		for j, f := range schema.Fields() {
			raw, ok := r.Values[f.Name]
			if !ok {
				return nil, fmt.Errorf("%w: reference row %d: no value for column %q (null for a missing one)", ErrInvalid, i+1, f.Name)
			}
			if err := appendValue(b.Field(j), raw); err != nil {
				return nil, fmt.Errorf("%w: reference row %d: column %q: %w", ErrInvalid, i+1, f.Name, err)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

// appendValue appends one JSON value to a builder of an input schema type.
func appendValue(b array.Builder, raw json.RawMessage) error {
	if string(raw) == "null" {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Float64Builder:
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return fmt.Errorf("%s is not a number", raw)
		}
		b.Append(v)
	case *array.Int64Builder:
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("%s is not an integer", raw)
		}
		b.Append(v)
	case *array.StringBuilder:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%s is not a string", raw)
		}
		b.Append(s)
	case *array.TimestampBuilder:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%s is not an RFC 3339 time string", raw)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("%s is not an RFC 3339 time: %w", raw, err)
		}
		b.Append(arrow.Timestamp(t.UnixMicro()))
	default:
		return fmt.Errorf("unsupported column type %s", b.Type())
	}
	return nil
}

// ReferenceValues are row i of rec as ReferenceRow.Values: the columns of
// schema (rec may have more), each encoded as ReferenceRecord reads it
// back. A value JSON cannot hold (NaN, an infinity) is an error.
func ReferenceValues(rec arrow.RecordBatch, schema *arrow.Schema, i int) (map[string]json.RawMessage, error) {
	values := make(map[string]json.RawMessage, schema.NumFields())
	for _, f := range schema.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("reference values: no column %q", f.Name)
		}
		col := rec.Column(idx[0])
		if col.IsNull(i) {
			values[f.Name] = json.RawMessage("null")
			continue
		}
		var v any
		switch col := col.(type) {
		case *array.Float64:
			if x := col.Value(i); math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("reference values: column %q: %g cannot be written as JSON", f.Name, x)
			}
			v = col.Value(i)
		case *array.Int64:
			v = col.Value(i)
		case *array.String:
			v = col.Value(i)
		case *array.Timestamp:
			v = time.UnixMicro(int64(col.Value(i))).UTC().Format(TimestampLayout)
		default:
			return nil, fmt.Errorf("reference values: column %q: unsupported type %s", f.Name, col.DataType())
		}
		raw, err := marshal(v)
		if err != nil {
			return nil, fmt.Errorf("reference values: column %q: %w", f.Name, err)
		}
		values[f.Name] = raw
	}
	return values, nil
}

// SaveReference writes only the bundle's reference.json (after checking
// it), for a bundle whose other files are already in place: reference
// rows added to a bundle made before there were any. Save writes it with
// the rest.
func (bu *Bundle) SaveReference(ctx context.Context, b store.Bucket, prefix string) error {
	if err := bu.checkReference(); err != nil {
		return fmt.Errorf("save %s: %w", ReferenceFile, err)
	}
	data, err := bu.encodeReference()
	if err != nil {
		return fmt.Errorf("save %s: %w", ReferenceFile, err)
	}
	opts := store.WriteOptions{ContentType: "application/json"}
	if err := store.WriteAll(ctx, b, store.Join(prefix, ReferenceFile), data, opts); err != nil {
		return fmt.Errorf("save %s: %w", ReferenceFile, err)
	}
	return nil
}

// marshal is json.Marshal without escaping <, > and & (reference.json is
// read by people, not embedded in HTML) and without the newline an
// Encoder ends with.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
