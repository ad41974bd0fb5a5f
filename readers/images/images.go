// Package images reads the ad images an image feature names. Each value of
// the feature's column is an object URI, gs://bucket/key or a key relative
// to the input store, and each object is read through the store seam
// (readers/store: retries, reads pinned to the generation seen), checked
// before it is decoded, decoded (PNG, JPEG, GIF from the standard library,
// WebP from golang.org/x/image), resized (bilinear, antialiased) and
// normalised into a float32 tensor, RGB channel first.
//
// A Loader fetches and decodes with workers of its own, separate from the
// scoring workers, and holds at most Workers images at a time: its memory
// is bounded by Workers × (MaxBytes + 8 × MaxPixels) whatever the number of
// images (8 bytes a pixel is the largest decoded form, 16-bit RGBA).
//
// Bad images are bad input, reported per image with a Reason (Error), never
// a crash: a missing object, one over MaxBytes (refused from its size in
// the store, before any byte is read), a format other than the four, a
// header announcing more than MaxPixels (a decompression bomb, refused
// before decoding), a truncated or unreadable file. A store failure (after
// its retries) or an object replaced while it is read is not bad input:
// Load returns it as an error and the run fails.
package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	_ "image/gif"  // registers GIF
	_ "image/jpeg" // registers JPEG
	_ "image/png"  // registers PNG
	"io"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers WebP
	"golang.org/x/sync/errgroup"

	"github.com/adtech/scorer/readers/store"
)

// Options of a Loader. The zero value of a field is its default.
type Options struct {
	// Width and Height of the tensor of an image (default 64 × 64).
	Width, Height int
	// MaxBytes refuses larger objects (default 8 MiB).
	MaxBytes int64
	// MaxPixels refuses images whose header announces more pixels, or a
	// side longer than MaxSide (defaults 16 Mpx, 16384).
	MaxPixels int64
	MaxSide   int
	// Workers fetch and decode at once (default GOMAXPROCS).
	Workers int
	// Mean and Std normalise each channel after it is scaled to [0, 1]:
	// (v - Mean) / Std (default 0 and 1: the values in [0, 1]).
	Mean, Std [3]float32
}

func (o *Options) setDefaults() {
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 64, 64
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 8 << 20
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = 16 << 20
	}
	if o.MaxSide <= 0 {
		o.MaxSide = 16384
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	for c := range o.Std {
		if o.Std[c] == 0 {
			o.Std[c] = 1
		}
	}
}

// Size is the number of float32 values of one image's tensor: 3 channels
// (RGB) of Height × Width, channel first.
func (o Options) Size() int {
	o.setDefaults()
	return 3 * o.Height * o.Width
}

// Reason says why an image could not be used.
type Reason string

// The reasons an image is bad input.
const (
	Missing       Reason = "missing"         // no URI, or no such object
	BadURI        Reason = "bad_uri"         // not gs://bucket/key nor a key of the input store
	TooLarge      Reason = "too_large"       // more than MaxBytes
	Unsupported   Reason = "unsupported"     // not PNG, JPEG, GIF or WebP
	TooManyPixels Reason = "too_many_pixels" // a header announcing more than MaxPixels or MaxSide, or no pixel
	Corrupt       Reason = "corrupt"         // truncated or unreadable
)

// Error is one image that could not be used: bad input. Its URI is a copy
// of the one given (which may alias a record's memory): it may be kept.
type Error struct {
	URI    string
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("image %q: %s: %v", e.URI, e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Key identifies an image's content: the CRC32C (Castagnoli) of its bytes
// and their number. It comes from the store's metadata where the store
// keeps a CRC32C (GCS), else from the bytes read.
type Key struct {
	CRC32C uint32
	Size   int64
}

// Result is what Load made of one URI: the image's content key, or why it
// could not be used (its tensor is then zeros).
type Result struct {
	Key Key
	Err *Error
}

// Opener opens the bucket of a URI such as gs://bucket (store.Open).
type Opener func(ctx context.Context, uri string) (store.Bucket, error)

// Loader reads images for a run: keys relative to the input store In, and
// gs:// URIs through Open (store.Open when nil), one bucket opened once.
type Loader struct {
	in   store.Bucket
	open Opener
	opts Options
	// slots holds a token per image being read or decoded, Workers in
	// all, whatever the number of Load and Keys calls at once.
	slots chan struct{}

	mu      sync.Mutex
	buckets map[string]store.Bucket
}

// NewLoader returns a Loader with opts (defaults applied).
func NewLoader(in store.Bucket, open Opener, opts Options) *Loader {
	opts.setDefaults()
	if open == nil {
		open = store.Open
	}
	return &Loader{in: in, open: open, opts: opts, slots: make(chan struct{}, opts.Workers), buckets: map[string]store.Bucket{}}
}

// Options are the loader's options, defaults applied.
func (l *Loader) Options() Options { return l.opts }

// Load reads the images of uris into dst, len(uris) × Options.Size()
// values, image i at i × Size (zeros for a bad one), and returns what it
// made of each. Its error is a failure of the run (the context, the store,
// an object replaced while read), not bad input. Calls may run at once (the
// scoring workers'): together they read and decode at most Workers images
// at a time.
func (l *Loader) Load(ctx context.Context, uris []string, dst []float32) ([]Result, error) {
	size := l.opts.Size()
	if len(dst) != len(uris)*size {
		return nil, fmt.Errorf("load %d images: %d values to fill, want %d", len(uris), len(dst), len(uris)*size)
	}
	out := make([]Result, len(uris))
	err := l.each(ctx, uris, func(ctx context.Context, i int, uri string) error {
		t := dst[i*size : (i+1)*size]
		key, bad, err := l.one(ctx, uri, t)
		if err != nil {
			return fmt.Errorf("image %q: %w", uri, err)
		}
		if bad != nil {
			clear(t)
		}
		out[i] = Result{Key: key, Err: bad}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// each calls f for every URI, at most Workers at once across every call
// of the loader (a slot each); the first error cancels the rest.
func (l *Loader) each(ctx context.Context, uris []string, f func(ctx context.Context, i int, uri string) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(l.opts.Workers)
	for i, uri := range uris {
		g.Go(func() error {
			release, err := l.slot(ctx)
			if err != nil {
				return err
			}
			defer release()
			return f(ctx, i, uri)
		})
	}
	return g.Wait()
}

// Keys returns the content key of each image of uris without decoding it:
// from the store's metadata where it keeps a CRC32C (GCS: no byte is
// read), else from the bytes (a local store). An image that cannot be used
// for what its metadata or URI says (missing, too large, a bad URI) has
// Err set; decoding problems are found by Load. Its error is a failure of
// the run, as Load's.
func (l *Loader) Keys(ctx context.Context, uris []string) ([]Result, error) {
	out := make([]Result, len(uris))
	err := l.each(ctx, uris, func(ctx context.Context, i int, uri string) error {
		b, key, info, bad, err := l.stat(ctx, uri)
		switch {
		case err != nil:
			return fmt.Errorf("image %q: %w", uri, err)
		case bad != nil:
			out[i].Err = bad
			return nil
		case info.CRC32C != 0:
			out[i].Key = Key{CRC32C: info.CRC32C, Size: info.Size}
			return nil
		}
		data, err := l.read(ctx, b, key, info)
		if err != nil {
			return fmt.Errorf("image %q: %w", uri, err)
		}
		out[i].Key = Key{CRC32C: crc32.Checksum(data, castagnoli), Size: int64(len(data))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// slot waits for one of the Workers slots; release gives it back.
func (l *Loader) slot(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stat resolves uri and reads its object's metadata: bad input as *Error,
// a failure of the run as err.
func (l *Loader) stat(ctx context.Context, uri string) (store.Bucket, string, store.ObjectInfo, *Error, error) {
	bad := func(r Reason, err error) (store.Bucket, string, store.ObjectInfo, *Error, error) {
		return nil, "", store.ObjectInfo{}, &Error{URI: strings.Clone(uri), Reason: r, Err: err}, nil
	}
	if uri == "" {
		return bad(Missing, errors.New("no URI"))
	}
	b, key, err := l.resolve(ctx, uri)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, "", store.ObjectInfo{}, e, nil
		}
		return nil, "", store.ObjectInfo{}, nil, err
	}
	info, err := b.Stat(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotExist):
		return bad(Missing, err)
	case err != nil:
		return nil, "", store.ObjectInfo{}, nil, err
	case info.Size > l.opts.MaxBytes:
		return bad(TooLarge, fmt.Errorf("%d bytes, at most %d", info.Size, l.opts.MaxBytes))
	}
	return b, key, info, nil, nil
}

// one reads, checks and decodes one image into t.
func (l *Loader) one(ctx context.Context, uri string, t []float32) (Key, *Error, error) {
	bad := func(r Reason, err error) (Key, *Error, error) {
		return Key{}, &Error{URI: strings.Clone(uri), Reason: r, Err: err}, nil
	}
	b, key, info, e, err := l.stat(ctx, uri)
	if e != nil || err != nil {
		return Key{}, e, err
	}
	data, err := l.read(ctx, b, key, info)
	if err != nil {
		return Key{}, nil, err
	}
	k := Key{CRC32C: info.CRC32C, Size: int64(len(data))}
	if k.CRC32C == 0 {
		k.CRC32C = crc32.Checksum(data, castagnoli)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	switch {
	case errors.Is(err, image.ErrFormat):
		return bad(Unsupported, err)
	case err != nil:
		return bad(Corrupt, fmt.Errorf("read the header: %w", err))
	case cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > l.opts.MaxSide || cfg.Height > l.opts.MaxSide ||
		int64(cfg.Width)*int64(cfg.Height) > l.opts.MaxPixels:
		return bad(TooManyPixels, fmt.Errorf("%s of %d × %d pixels, at most %d pixels and %d a side",
			format, cfg.Width, cfg.Height, l.opts.MaxPixels, l.opts.MaxSide))
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return bad(Corrupt, fmt.Errorf("decode %s: %w", format, err))
	}
	l.tensor(img, t)
	return k, nil, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// read reads an object whole, pinned to the generation Stat saw, and at
// most MaxBytes of it.
func (l *Loader) read(ctx context.Context, b store.Bucket, key string, info store.ObjectInfo) ([]byte, error) {
	r, err := b.NewReader(ctx, key, info.Generation)
	if err != nil {
		return nil, fmt.Errorf("open (generation %d): %w", info.Generation, err)
	}
	defer func() { _ = r.Close() }()
	data, err := io.ReadAll(io.LimitReader(r, l.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read (generation %d): %w", info.Generation, err)
	}
	if int64(len(data)) > l.opts.MaxBytes {
		return nil, fmt.Errorf("read (generation %d): more than the %d bytes its size said", info.Generation, info.Size)
	}
	return data, nil
}

// resolve is the bucket and key of uri: gs://bucket/key through the
// opener, anything else a key of the input store.
func (l *Loader) resolve(ctx context.Context, uri string) (store.Bucket, string, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		if err := store.CheckKey(uri); err != nil {
			return nil, "", &Error{URI: strings.Clone(uri), Reason: BadURI, Err: err}
		}
		return l.in, uri, nil
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if scheme != "gs" || !bucketName(bucket) || store.CheckKey(key) != nil {
		return nil, "", &Error{URI: strings.Clone(uri), Reason: BadURI, Err: errors.New("want gs://bucket/key or a key of the input store")}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[bucket]
	if !ok {
		var err error
		b, err = l.open(ctx, "gs://"+bucket)
		switch {
		case errors.Is(err, store.ErrNotExist):
			return nil, "", &Error{URI: strings.Clone(uri), Reason: Missing, Err: err}
		case err != nil:
			return nil, "", err
		}
		l.buckets[bucket] = b
	}
	return b, key, nil
}

// bucketName reports whether s can name a GCS bucket: 3 to 222 lowercase
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit.
func bucketName(s string) bool {
	if len(s) < 3 || len(s) > 222 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return alnum(s[0]) && alnum(s[len(s)-1])
}

// tensor resizes img to Width × Height (bilinear: x/image/draw's tent
// kernel, which widens its support when it shrinks, so a banner scaled
// down is antialiased, as PIL's bilinear resize is; over a white
// background where the image is transparent) and writes it into t channel
// first, normalised.
func (l *Loader) tensor(img image.Image, t []float32) {
	w, h := l.opts.Width, l.opts.Height
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(rgba, rgba.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.BiLinear.Scale(rgba, rgba.Bounds(), img, img.Bounds(), draw.Over, nil)
	var scale, shift [3]float32
	for c := range 3 {
		scale[c] = 1 / (255 * l.opts.Std[c])
		shift[c] = l.opts.Mean[c] / l.opts.Std[c]
	}
	plane := w * h
	for p := range plane {
		px := rgba.Pix[4*p : 4*p+3 : 4*p+3]
		for c := range 3 {
			t[c*plane+p] = float32(px[c])*scale[c] - shift[c]
		}
	}
}
