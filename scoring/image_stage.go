package scoring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/scoring/bundle"
)

// ImageLoader reads images for the image stage: readers/images.Loader.
type ImageLoader interface {
	// Keys are the images' content keys, read without decoding.
	Keys(ctx context.Context, uris []string) ([]images.Result, error)
	// Load decodes the images into dst, Options().Size() values each.
	Load(ctx context.Context, uris []string, dst []float32) ([]images.Result, error)
}

// What the image stage does with a row whose image cannot be used
// (missing, unreadable, too large...).
const (
	// BadImageMissing scores the row with the model's learned missing
	// embedding, as training did for rows without an image, and counts it.
	BadImageMissing = "missing"
	// BadImageFail fails the run with the URI and the reason.
	BadImageFail = "fail"
	// BadImageReject refuses the row as bad input before it is scored
	// (Check, which the readers call as they read: the row goes to the
	// rejects table with its file, row, the URI and the reason).
	BadImageReject = "reject"
)

// ErrBadImage marks a run failed on a bad image under BadImageFail: Embed
// returns a *RowError (bad input) wrapping it and the *images.Error.
var ErrBadImage = errors.New("bad image")

// DefaultImageCacheEntries bounds the embeddings an ImageStage keeps: at
// E = 16 one entry is about 100 bytes, 1 Mi entries about 100 MiB.
const DefaultImageCacheEntries = 1 << 20

// imageChunk is the number of images decoded and embedded at once: it
// bounds the stage's image memory (64 × 3·S·S float32, 768 KiB at 32 px).
const imageChunk = 64

// ImageStage computes the image embeddings of batches for one model with
// image inputs (Batch.ImageEmb), before the model scores them. Embeddings
// are cached by the image's content (images.Key: CRC32C and size), so an
// image is decoded and run through the tower once per run however many
// rows show it, and a cache filled by an earlier run (Preload) skips even
// that: an image whose key the store's metadata gives (GCS) is then never
// downloaded. A URI's key is looked up once per run (the URI → key map is
// kept like the cache, and is cleared if it outgrows it).
//
// One ImageStage serves every worker: it is safe for concurrent use, and
// an image two workers meet at once is computed by one of them while the
// other waits (Misses count distinct images).
type ImageStage struct {
	bu      *bundle.Bundle
	loader  ImageLoader
	policy  string
	towers  sync.Pool // *Tower, one per concurrent Embed
	size    int       // values of one image
	dim     int       // E
	missing []float32
	max     int

	mu    sync.Mutex
	byURI map[string]uriKey
	cache map[images.Key][]float32
	added []images.Key // computed in this run, in order (New)
	// pending are the keys being computed, each closed when done: another
	// worker meeting one waits for it rather than computing it again.
	pending map[images.Key]chan struct{}

	hits, misses, bad atomic.Int64
	badBy             sync.Map // images.Reason → *atomic.Int64
}

// uriKey is what a URI resolved to: a content key, or why it is unusable.
type uriKey struct {
	key images.Key
	bad *images.Error
}

// ImageStats count what an ImageStage did.
type ImageStats struct {
	// Hits and Misses count, per batch, its distinct images whose
	// embedding was cached (this run or Preload) or had to be computed.
	Hits, Misses int64
	// Bad counts rows × image features whose image could not be used, by
	// reason (BadByReason): scored with the missing embedding, or refused
	// (BadImageReject).
	Bad         int64
	BadByReason map[string]int64
}

// HitRate is Hits / (Hits + Misses), 0 without lookups.
func (s ImageStats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// NewImageStage returns the image stage of a validated bundle with image
// inputs, reading with loader (whose tensors must be the bundle's
// ImageSize) and applying policy to bad images ("" is BadImageMissing).
func NewImageStage(bu *bundle.Bundle, loader ImageLoader, policy string) (*ImageStage, error) {
	switch policy {
	case "":
		policy = BadImageMissing
	case BadImageMissing, BadImageFail, BadImageReject:
	default:
		return nil, fmt.Errorf("image stage: bad image policy %q (%s, %s or %s)", policy, BadImageMissing, BadImageReject, BadImageFail)
	}
	tw, err := NewTower(bu)
	if err != nil {
		return nil, err
	}
	st := &ImageStage{
		bu: bu, loader: loader, policy: policy, size: tw.InputSize(), dim: tw.Dim(),
		missing: tw.Missing(), max: DefaultImageCacheEntries,
		byURI: map[string]uriKey{}, cache: map[images.Key][]float32{}, pending: map[images.Key]chan struct{}{},
	}
	st.towers.Put(tw)
	return st, nil
}

// Preload adds an embedding computed by an earlier run of the same model
// version (by content key) to the cache. New returns it only if keep is
// set (the run replaces where it was stored).
func (st *ImageStage) Preload(key images.Key, emb []float32, keep bool) error {
	if len(emb) != st.dim {
		return fmt.Errorf("image stage: embedding of %d values for %+v, the model's are %d", len(emb), key, st.dim)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, dup := st.cache[key]; !dup && len(st.cache) < st.max {
		st.cache[key] = slices.Clone(emb)
		if keep {
			st.added = append(st.added, key)
		}
	}
	return nil
}

// New calls f with each embedding computed in this run (and those
// preloaded with keep), in the order they were added: what a persisted
// cache should store for the run.
func (st *ImageStage) New(f func(images.Key, []float32) error) error {
	st.mu.Lock()
	added := slices.Clone(st.added)
	st.mu.Unlock()
	for _, k := range added {
		st.mu.Lock()
		emb := st.cache[k]
		st.mu.Unlock()
		if err := f(k, emb); err != nil {
			return err
		}
	}
	return nil
}

// Stats are the counts so far.
func (st *ImageStage) Stats() ImageStats {
	s := ImageStats{Hits: st.hits.Load(), Misses: st.misses.Load(), Bad: st.bad.Load(), BadByReason: map[string]int64{}}
	st.badBy.Range(func(k, v any) bool {
		s.BadByReason[string(k.(images.Reason))] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// Check is the reason the image of uri cannot be used ("" if it can),
// finding out as Embed would: its key looked up, and, if its embedding is
// not cached, the image decoded and embedded into the cache. Under
// BadImageReject the readers call it for every row they read (an error
// stops the run), so that a row with a bad image is a bad row; Embed then
// meets none.
func (st *ImageStage) Check(ctx context.Context, uri string) (string, error) {
	if uri == "" {
		st.countBad(images.Missing)
		return "image missing: no URI", nil
	}
	for range 2 {
		st.mu.Lock()
		k, known := st.byURI[uri]
		_, cached := st.cache[k.key]
		st.mu.Unlock()
		switch {
		case known && k.bad != nil:
			st.countBad(k.bad.Reason)
			return fmt.Sprintf("image %s: %v", k.bad.Reason, k.bad.Err), nil
		case known && cached:
			return "", nil
		}
		one := []string{uri}
		if err := st.resolve(ctx, one); err != nil {
			return "", err
		}
		if err := st.compute(ctx, one); err != nil {
			return "", err
		}
	}
	// Computed but not kept (the cache is full): it decoded.
	return "", nil
}

// Embed fills b.ImageEmb (N × I·E) from b.Images: a cached embedding, a
// computed one, or the missing embedding for a row without a usable image
// (BadImageMissing; BadImageFail returns an error wrapping ErrBadImage).
// Its other errors (the store, the context) fail the run.
func (st *ImageStage) Embed(ctx context.Context, b *features.Batch) error {
	if b.I != st.bu.Inputs.Images || len(b.Images) != b.N*b.I {
		return fmt.Errorf("%w: batch has %d image URIs for %d rows × %d image features, model %s %s has %d image features",
			ErrInput, len(b.Images), b.N, b.I, st.bu.Name, st.bu.Version, st.bu.Inputs.Images)
	}
	if err := st.resolve(ctx, b.Images); err != nil {
		return err
	}
	if err := st.compute(ctx, b.Images); err != nil {
		return err
	}
	e, iw := st.dim, b.I*st.dim
	b.ImageEmb = slices.Grow(b.ImageEmb[:0], b.N*iw)[:b.N*iw]
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, uri := range b.Images {
		dst := b.ImageEmb[i*e : (i+1)*e]
		k, known := st.byURI[uri]
		bad := k.bad
		switch {
		case uri == "":
			bad = &images.Error{URI: uri, Reason: images.Missing, Err: errors.New("no URI")}
		case known && bad == nil:
			if emb, ok := st.cache[k.key]; ok {
				copy(dst, emb)
				continue
			}
		}
		if bad == nil {
			// Resolved and computed above, but the maps were full and
			// dropped it: computed again for this row alone. Rare.
			st.mu.Unlock()
			err := st.embedOne(ctx, uri, dst)
			st.mu.Lock()
			if err != nil {
				return err
			}
			continue
		}
		if st.policy == BadImageFail {
			return &RowError{Row: i / b.I, Err: fmt.Errorf("%w: image feature %d: %w", ErrBadImage, i%b.I, bad)}
		}
		// BadImageMissing; or BadImageReject with an image that Check
		// found good and that changed since (the row is scored as
		// missing, and counted).
		st.countBad(bad.Reason)
		copy(dst, st.missing)
	}
	return nil
}

func (st *ImageStage) countBad(r images.Reason) {
	st.bad.Add(1)
	c, _ := st.badBy.LoadOrStore(r, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// resolve looks up the content keys of the batch's URIs not yet known.
func (st *ImageStage) resolve(ctx context.Context, uris []string) error {
	var todo []string
	st.mu.Lock()
	seen := map[string]bool{}
	for _, uri := range uris {
		if _, ok := st.byURI[uri]; !ok && uri != "" && !seen[uri] {
			seen[uri] = true
			todo = append(todo, uri)
		}
	}
	st.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	res, err := st.loader.Keys(ctx, todo)
	if err != nil {
		return fmt.Errorf("image stage: %w", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.byURI)+len(todo) > st.max {
		clear(st.byURI) // looked up again when met again
	}
	for i, uri := range todo {
		// The batch's strings may alias its record's memory: the map keeps
		// copies (an images.Error has its own).
		st.byURI[strings.Clone(uri)] = uriKey{key: res[i].Key, bad: res[i].Err}
	}
	return nil
}

// compute embeds the batch's distinct images whose embedding is not
// cached, imageChunk at a time, waits for those other workers are
// computing, and counts hits and misses.
func (st *ImageStage) compute(ctx context.Context, uris []string) error {
	var todo []string         // one URI per key to compute
	var claimed []images.Key  // their keys, pending here
	var waits []chan struct{} // keys pending in other workers
	st.mu.Lock()
	keys := map[images.Key]bool{}
	for _, uri := range uris {
		k, ok := st.byURI[uri]
		if !ok || k.bad != nil || keys[k.key] {
			continue
		}
		keys[k.key] = true
		if _, ok := st.cache[k.key]; ok {
			st.hits.Add(1)
			continue
		}
		if ch, ok := st.pending[k.key]; ok {
			st.hits.Add(1) // computed once, by the other worker
			waits = append(waits, ch)
			continue
		}
		st.pending[k.key] = make(chan struct{})
		claimed = append(claimed, k.key)
		todo = append(todo, uri)
	}
	st.mu.Unlock()
	defer func() { // release what is still claimed (an error: the others compute it)
		st.mu.Lock()
		for _, k := range claimed {
			if ch, ok := st.pending[k]; ok {
				close(ch)
				delete(st.pending, k)
			}
		}
		st.mu.Unlock()
	}()
	if len(todo) > 0 {
		if err := st.computeAll(ctx, todo, claimed); err != nil {
			return err
		}
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// computeAll loads and embeds the images of uris (whose keys were looked
// up as claimed) into the cache, imageChunk at a time.
func (st *ImageStage) computeAll(ctx context.Context, uris []string, claimed []images.Key) error {
	tower, err := st.tower()
	if err != nil {
		return err
	}
	defer st.towers.Put(tower)
	buf := make([]float32, min(len(uris), imageChunk)*st.size)
	emb := make([]float32, min(len(uris), imageChunk)*st.dim)
	for lo := 0; lo < len(uris); lo += imageChunk {
		chunk := uris[lo:min(lo+imageChunk, len(uris))]
		n := len(chunk)
		res, err := st.loader.Load(ctx, chunk, buf[:n*st.size])
		if err != nil {
			return fmt.Errorf("image stage: %w", err)
		}
		tower.Embed(buf[:n*st.size], n, emb[:n*st.dim])
		st.mu.Lock()
		for i, uri := range chunk {
			// A string key stored again replaces the map's copy: store a
			// copy, not the batch's string.
			if res[i].Err != nil { // found bad when decoded
				st.byURI[strings.Clone(uri)] = uriKey{bad: res[i].Err}
			} else {
				st.misses.Add(1)
				// The key of the bytes decoded: the URI's object may have
				// been replaced since its key was looked up.
				st.byURI[strings.Clone(uri)] = uriKey{key: res[i].Key}
				if _, ok := st.cache[res[i].Key]; !ok && len(st.cache) < st.max {
					st.cache[res[i].Key] = slices.Clone(emb[i*st.dim : (i+1)*st.dim])
					st.added = append(st.added, res[i].Key)
				}
			}
			if k := claimed[lo+i]; st.pending[k] != nil {
				close(st.pending[k])
				delete(st.pending, k)
			}
		}
		st.mu.Unlock()
	}
	return nil
}

// embedOne computes one image's embedding into dst without caching it
// (the cache is full); a bad image gets the missing embedding or fails,
// by the policy.
func (st *ImageStage) embedOne(ctx context.Context, uri string, dst []float32) error {
	buf := make([]float32, st.size)
	res, err := st.loader.Load(ctx, []string{uri}, buf)
	if err != nil {
		return fmt.Errorf("image stage: %w", err)
	}
	if res[0].Err != nil {
		if st.policy == BadImageFail {
			return fmt.Errorf("%w: %w", ErrBadImage, res[0].Err)
		}
		st.countBad(res[0].Err.Reason)
		copy(dst, st.missing)
		return nil
	}
	tw, err := st.tower()
	if err != nil {
		return err
	}
	defer st.towers.Put(tw)
	st.misses.Add(1)
	tw.Embed(buf, 1, dst)
	return nil
}

// tower is a compiled tower of the pool (put it back when done), or a new
// one when every pooled one is in use.
func (st *ImageStage) tower() (*Tower, error) {
	if tw, ok := st.towers.Get().(*Tower); ok {
		return tw, nil
	}
	return NewTower(st.bu)
}
