package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// Sentinel errors; test with errors.Is. The errors wrapping them name the
// model and the version.
var (
	// ErrNotFound: the model, the version, or the model's current version
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrVersionExists: Add found the version holding other content.
	// Versions are immutable; add the bundle under a new version.
	ErrVersionExists = errors.New("version exists")
	// ErrConflict: the alias changed between reading it and swapping it
	// (another Promote or Rollback won). Nothing was changed; read the
	// alias again and retry if still wanted.
	ErrConflict = errors.New("conflict")
	// ErrNoPrevious: Rollback found no version current before the present
	// one.
	ErrNoPrevious = errors.New("nothing to roll back to")
	// ErrInvalidRef: a malformed models:/ reference, model name or version.
	ErrInvalidRef = errors.New("invalid model reference")
)

// Registry is a model registry in a store.Bucket; see the package
// documentation for the layout and the consistency model. It holds no
// state but the bucket: any number of Registry values, in any number of
// processes, may use one bucket at once. Safe for concurrent use.
type Registry struct {
	b store.Bucket
}

// New returns the registry kept in b (under models/ from its root).
func New(b store.Bucket) *Registry { return &Registry{b: b} }

// Add stores a bundle as version bu.Version of model bu.Name. Adding a
// version that exists with identical content (every file byte for byte) is
// a no-op success; with other content it is an error wrapping
// ErrVersionExists, also when another Add of that version is still writing
// or stopped half-way (re-adding the same bundle finishes such an Add).
//
// The weights are created first, create-if-absent, and claim the version;
// reference.json next, create-if-absent; model.yaml is created last,
// create-if-absent, and makes it exist. A
// version is never loadable half-written, and of concurrent Adds of
// different content exactly one succeeds.
func (r *Registry) Add(ctx context.Context, bu *bundle.Bundle) error {
	return r.add(ctx, bu, false)
}

// add is Add; stopAfterWeights stops it between its two writes, as a crash
// would (for tests).
func (r *Registry) add(ctx context.Context, bu *bundle.Bundle, stopAfterWeights bool) error {
	if bu == nil {
		return errors.New("add: nil bundle")
	}
	op := "add " + Ref{Name: bu.Name, Version: bu.Version}.String()
	if err := checkName(bu.Name); err != nil {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	if err := checkVersion(bu.Version); err != nil {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	model, weights, extra, err := encode(ctx, bu)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	same, err := r.createOrSame(ctx, weightsKey(bu.Name, bu.Version), weights, "application/octet-stream")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !same {
		if ok, err := state.Exists(ctx, r.b, modelKey(bu.Name, bu.Version)); err != nil || ok {
			return fmt.Errorf("%s: %w: version %q of model %q holds other weights; versions are immutable: add the bundle under a new version", op, ErrVersionExists, bu.Version, bu.Name)
		}
		return fmt.Errorf("%s: %w: version %q of model %q holds other weights and no %s yet: another Add of it is in progress, or stopped half-way (re-adding that bundle finishes it); add this bundle under a new version",
			op, ErrVersionExists, bu.Version, bu.Name, bundle.ModelFile)
	}
	if stopAfterWeights {
		return nil
	}
	// The bundle's other files (reference rows, profile) before
	// model.yaml, which makes the version visible.
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		same, err := r.createOrSame(ctx, versionPrefix(bu.Name, bu.Version)+name, extra[name], "application/json")
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if !same {
			return fmt.Errorf("%s: %w: version %q of model %q holds another %s; versions are immutable: add the bundle under a new version", op, ErrVersionExists, bu.Version, bu.Name, name)
		}
	}
	same, err = r.createOrSame(ctx, modelKey(bu.Name, bu.Version), model, "application/yaml")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !same {
		return fmt.Errorf("%s: %w: version %q of model %q holds another %s; versions are immutable: add the bundle under a new version", op, ErrVersionExists, bu.Version, bu.Name, bundle.ModelFile)
	}
	return nil
}

// createOrSame creates key with data unless it exists. same is true when
// the object is now there with exactly data (created, or there before),
// false when it holds other bytes.
func (r *Registry) createOrSame(ctx context.Context, key string, data []byte, contentType string) (same bool, err error) {
	_, err = store.Put(ctx, r.b, key, data, store.WriteOptions{IfAbsent: true, ContentType: contentType})
	if !errors.Is(err, store.ErrPrecondition) {
		return err == nil, err
	}
	info, err := r.b.Stat(ctx, key)
	if err != nil {
		return false, err
	}
	if info.Size != int64(len(data)) {
		return false, nil
	}
	have, err := store.ReadAll(ctx, r.b, key)
	if err != nil {
		return false, err
	}
	return bytes.Equal(have, data), nil
}

// Load loads the bundle a reference names, resolving @current through the
// model's alias. A missing model, version or current version is an error
// wrapping ErrNotFound that names them.
func (r *Registry) Load(ctx context.Context, ref Ref) (*bundle.Bundle, error) {
	op := "load " + ref.String()
	if err := checkName(ref.Name); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	version := ref.Version
	if ref.Alias {
		a, err := r.Current(ctx, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if a == nil {
			return nil, fmt.Errorf("%s: %w", op, r.noCurrent(ctx, ref.Name))
		}
		version = a.Version
	} else if err := checkVersion(version); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	bu, err := bundle.Load(ctx, r.b, versionPrefix(ref.Name, version))
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: model %q has no version %q (%w)", op, ErrNotFound, ref.Name, version, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if bu.Name != ref.Name || bu.Version != version {
		return nil, fmt.Errorf("%s: %s: %w: holds %s", op, r.b.URI(versionPrefix(ref.Name, version)), bundle.ErrInvalid, Ref{Name: bu.Name, Version: bu.Version})
	}
	return bu, nil
}

// noCurrent is the error of a model without a current version: a model
// that does not exist, or one never promoted.
func (r *Registry) noCurrent(ctx context.Context, name string) error {
	if _, err := r.Versions(ctx, name); err != nil {
		return err
	}
	return fmt.Errorf("%w: model %q has no current version: promote one with `scorer models promote`", ErrNotFound, name)
}

// Models lists the names of the models that have at least one version,
// sorted.
func (r *Registry) Models(ctx context.Context) ([]string, error) {
	objs, err := r.b.List(ctx, Dir+"/")
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	var names []string
	for _, o := range objs {
		if name, _, ok := versionOf(o.Key); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Versions lists the versions of a model, oldest first (by AddedAt, then by
// version), marking the current one. A version whose Add stopped before
// its model.yaml is not listed. A model without versions is an error
// wrapping ErrNotFound.
func (r *Registry) Versions(ctx context.Context, name string) ([]Version, error) {
	op := fmt.Sprintf("list versions of %q", name)
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	cur, err := r.Current(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	objs, err := r.b.List(ctx, modelPrefix(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var vs []Version
	for _, o := range objs {
		if n, v, ok := versionOf(o.Key); ok && n == name {
			vs = append(vs, Version{Version: v, AddedAt: o.Updated, Current: cur != nil && cur.Version == v})
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w: no model %q in %s", op, ErrNotFound, name, r.b.URI(Dir+"/"))
	}
	slices.SortFunc(vs, func(a, b Version) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return vs, nil
}

// encode returns the bytes bundle.Save writes (it validates the bundle):
// the registry writes them itself, under its own conditions. extra are the
// bundle's other files by name (reference rows, profile).
func encode(ctx context.Context, bu *bundle.Bundle) (model, weights []byte, extra map[string][]byte, err error) {
	c := &capture{objects: map[string][]byte{}}
	if err := bu.Save(ctx, c, ""); err != nil {
		return nil, nil, nil, err
	}
	model, weights = c.objects[bundle.ModelFile], c.objects[bundle.WeightsFile]
	if model == nil || weights == nil {
		return nil, nil, nil, fmt.Errorf("encode bundle: save wrote %d objects, want %s and %s among them", len(c.objects), bundle.ModelFile, bundle.WeightsFile)
	}
	delete(c.objects, bundle.ModelFile)
	delete(c.objects, bundle.WeightsFile)
	return model, weights, c.objects, nil
}

// errCapture: capture only takes writes.
var errCapture = errors.New("registry: in-memory bundle encoder supports only writes")

// capture is a write-only in-memory store.Bucket: bundle.Save writes into it
// so that the registry gets the bundle's bytes. Not safe for concurrent use
// (Save writes one object after the other).
type capture struct {
	objects map[string][]byte
}

func (c *capture) List(context.Context, string) ([]store.ObjectInfo, error) { return nil, errCapture }

func (c *capture) Stat(context.Context, string) (store.ObjectInfo, error) {
	return store.ObjectInfo{}, errCapture
}

func (c *capture) NewReader(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, errCapture
}

func (c *capture) NewRangeReader(context.Context, string, int64, int64, int64) (io.ReadCloser, error) {
	return nil, errCapture
}

func (c *capture) NewWriter(_ context.Context, key string, _ store.WriteOptions) (store.Writer, error) {
	return &captureWriter{c: c, key: key}, nil
}

func (c *capture) Copy(context.Context, string, string, store.WriteOptions) error { return errCapture }

func (c *capture) Delete(context.Context, string) error { return errCapture }

func (c *capture) URI(key string) string { return "memory:" + key }

type captureWriter struct {
	c   *capture
	key string
	buf bytes.Buffer
}

func (w *captureWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *captureWriter) Close() error {
	w.c.objects[w.key] = w.buf.Bytes()
	return nil
}

func (w *captureWriter) Abort() {}

func (w *captureWriter) Attrs() store.ObjectInfo {
	return store.ObjectInfo{Key: w.key, Size: int64(w.buf.Len()), Generation: 1, Updated: time.Now()}
}
