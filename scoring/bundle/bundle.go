package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/hugepage"
	"github.com/adtech/scorer/readers/store"
)

// Object names inside a bundle folder.
const (
	ModelFile   = "model.yaml"
	WeightsFile = "weights.safetensors"
	// ProfileFile holds the training profile (Bundle.Profile), if any.
	ProfileFile = "profile.json"
	// ReferenceFile holds the reference rows (optional: see ReferenceRow).
	ReferenceFile = "reference.json"
)

// bundleFormat is the version of the model.yaml layout written by Save.
const bundleFormat = 1

// ErrInvalid marks a bundle that cannot be read or does not describe a
// model: a bad model.yaml, an unreadable weights file, a missing tensor or a
// tensor of the wrong shape. Test with errors.Is.
var ErrInvalid = errors.New("invalid model bundle")

// modelFile is the layout of model.yaml.
type modelFile struct {
	Format  int `yaml:"format"`
	*Bundle `yaml:",inline"`
}

// Load reads the bundle in the folder prefix of b (model.yaml and
// weights.safetensors) and validates it. Its feature spec gets the defaults
// of a spec file (features.Spec.SetDefaults) and must be valid and covered
// by its statistics (what features.NewPipeline checks). Errors wrap
// ErrInvalid if the bundle is not valid, and the store's error (such as
// store.ErrNotExist) if it cannot be read.
func Load(ctx context.Context, b store.Bucket, prefix string) (*Bundle, error) {
	modelKey := store.Join(prefix, ModelFile)
	data, err := store.ReadAll(ctx, b, modelKey)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	bu := &Bundle{}
	mf := modelFile{Bundle: bu}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil {
		return nil, fmt.Errorf("load bundle: decode %s: %w: %w", b.URI(modelKey), ErrInvalid, err)
	}
	if mf.Format != bundleFormat {
		return nil, fmt.Errorf("load bundle: %s: %w: format %d, want %d", b.URI(modelKey), ErrInvalid, mf.Format, bundleFormat)
	}
	if err := bu.prepareFeatures(); err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", b.URI(prefix), err)
	}

	weightsKey := store.Join(prefix, WeightsFile)
	data, err = readSized(ctx, b, weightsKey)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	if bu.Weights, err = decodeWeights(data); err != nil {
		return nil, fmt.Errorf("load bundle: %s: %w", b.URI(weightsKey), err)
	}
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", b.URI(prefix), err)
	}
	if bu.Profile, err = loadProfile(ctx, b, store.Join(prefix, ProfileFile)); err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	if err := bu.loadReference(ctx, b, prefix); err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	return bu, nil
}

// SaveProfile writes the bundle's profile.json alone (null when it has no
// profile): for a bundle made before it had one (Save writes it too).
func (bu *Bundle) SaveProfile(ctx context.Context, b store.Bucket, prefix string) error {
	data, err := json.Marshal(bu.Profile)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ProfileFile, err)
	}
	return store.WriteAll(ctx, b, store.Join(prefix, ProfileFile), data, store.WriteOptions{ContentType: "application/json"})
}

// loadProfile reads a bundle's training profile: nil if it has none.
func loadProfile(ctx context.Context, b store.Bucket, key string) (*features.Profile, error) {
	data, err := store.ReadAll(ctx, b, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p *features.Profile // stays nil for "null": saved without one
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %w", b.URI(key), ErrInvalid, err)
	}
	return p, nil
}

// readSized reads a whole object into one buffer of the size the store
// gives, instead of growing one while reading (io.ReadAll): for a 109 MB
// weights file, growing by doubling allocated several times its size at
// start-up, the highest memory of a whole scoring run. The weights are then
// used in place (decodeWeights).
func readSized(ctx context.Context, b store.Bucket, key string) ([]byte, error) {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, key, info.Generation)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	data := hugepage.Bytes(int(max(info.Size, 0))) // the embedding tables are read at random
	n, err := io.ReadFull(r, data)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return data[:n], nil // shorter than its info said; decodeWeights judges
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	hugepage.Collapse(data)
	// Longer than its info said (a store without generations): the rest.
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	return append(data, rest...), nil
}

// Save validates the bundle and writes it to the folder prefix of b, weights
// weights, reference rows and profile first, so that a model.yaml is only
// ever seen beside the rest of its bundle once every write has succeeded.
// It always writes reference.json and profile.json (with no rows, or
// null, if the bundle has none), so that a bundle saved over another never
// keeps the other's.
func (bu *Bundle) Save(ctx context.Context, b store.Bucket, prefix string) error {
	if err := bu.Validate(); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	if err := bu.checkFeaturesToSave(); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	weights, err := bu.encodeWeights()
	if err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	if err := bu.SaveReference(ctx, b, prefix); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(modelFile{Format: bundleFormat, Bundle: bu}); err != nil {
		return fmt.Errorf("save bundle: encode %s: %w", ModelFile, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("save bundle: encode %s: %w", ModelFile, err)
	}
	opts := store.WriteOptions{ContentType: "application/octet-stream"}
	if err := store.WriteAll(ctx, b, store.Join(prefix, WeightsFile), weights, opts); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	if err := bu.SaveProfile(ctx, b, prefix); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	opts.ContentType = "application/yaml"
	if err := store.WriteAll(ctx, b, store.Join(prefix, ModelFile), buf.Bytes(), opts); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	return nil
}
