package images_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"golang.org/x/sync/errgroup"

	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
)

// split is a w × h image, red on its left half and blue on its right:
// where its tensor's values must be is known without decoding anything.
func split(w, h int) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}})
	for y := range h {
		for x := w / 2; x < w; x++ {
			img.SetColorIndex(x, y, 1)
		}
	}
	return img
}

func encode(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "webp": // made by Debian's cwebp -lossless from split(64, 32) as PNG
		var data []byte
		data, err = os.ReadFile("testdata/split.webp")
		buf.Write(data)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func put(t testing.TB, b store.Bucket, key string, data []byte) {
	t.Helper()
	if err := store.WriteAll(context.Background(), b, key, data, store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// at is channel c of pixel (x, y) of image i's tensor.
func at(o images.Options, dst []float32, i, c, x, y int) float32 {
	return dst[i*o.Size()+c*o.Width*o.Height+y*o.Width+x]
}

// Every format decodes to the image it holds, channel first, resized and
// normalised: left columns red, right columns blue (away from the edge
// between them, which the filter blends), in every row.
func TestFormatsToTensors(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	formats := []string{"png", "jpeg", "gif", "webp"}
	var uris []string
	for _, f := range formats {
		put(t, in, "img/split."+f, encode(t, f, split(64, 32)))
		uris = append(uris, "img/split."+f)
	}
	for _, norm := range []bool{false, true} {
		opts := images.Options{Width: 16, Height: 8}
		lo, hi := float32(0), float32(1)
		if norm {
			opts.Mean, opts.Std = [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5}
			lo, hi = -1, 1
		}
		l := images.NewLoader(in, nil, opts)
		dst := make([]float32, len(uris)*opts.Size())
		res, err := l.Load(t.Context(), uris, dst)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range formats {
			if res[i].Err != nil {
				t.Fatalf("%s: %v", f, res[i].Err)
			}
			tol := float32(1.0 / 255)
			if f == "jpeg" {
				tol = 0.08 * (hi - lo) // lossy, and its chroma subsampled
			}
			for y := range opts.Height {
				for x := range opts.Width {
					if x >= 6 && x < 10 {
						continue
					}
					want := [3]float32{hi, lo, lo} // red
					if x >= 8 {
						want = [3]float32{lo, lo, hi} // blue
					}
					for c := range 3 {
						if got := at(opts, dst, i, c, x, y); math.Abs(float64(got-want[c])) > float64(tol) {
							t.Fatalf("%s (normalised %v): channel %d at (%d, %d) = %g, want %g", f, norm, c, x, y, got, want[c])
						}
					}
				}
			}
		}
	}
}

// A transparent image is composited over white.
func TestTransparentIsWhite(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	put(t, in, "clear.png", encode(t, "png", image.NewNRGBA(image.Rect(0, 0, 10, 10))))
	l := images.NewLoader(in, nil, images.Options{Width: 4, Height: 4})
	dst := make([]float32, l.Options().Size())
	res, err := l.Load(t.Context(), []string{"clear.png"}, dst)
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	for i, v := range dst {
		if v != 1 {
			t.Fatalf("value %d = %g, want 1 (white)", i, v)
		}
	}
}

// Each kind of bad image is reported with its reason and zeros, beside good
// images of the same call, which are unaffected.
func TestBadImages(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	good := encode(t, "png", split(64, 32))
	put(t, in, "good.png", good)
	put(t, in, "big.png", append(bytes.Clone(good), make([]byte, 2000)...))
	put(t, in, "text.png", []byte("just text, not an image"))
	put(t, in, "bmp.bmp", append([]byte("BM"), make([]byte, 60)...))
	put(t, in, "truncated.png", good[:len(good)/2])
	put(t, in, "bomb.png", bomb(t, 100_000, 100_000))
	put(t, in, "wide.png", bomb(t, 20_000, 1))
	put(t, in, "empty.png", nil)
	cases := []struct {
		uri  string
		want images.Reason
	}{
		{"good.png", ""},
		{"", images.Missing},
		{"nothere.png", images.Missing},
		{"../outside.png", images.BadURI},
		{"s3://bucket/x.png", images.BadURI},
		{"big.png", images.TooLarge},
		{"text.png", images.Unsupported},
		{"bmp.bmp", images.Unsupported},
		{"empty.png", images.Unsupported},
		{"truncated.png", images.Corrupt},
		{"bomb.png", images.TooManyPixels},
		{"wide.png", images.TooManyPixels},
		{"good.png", ""},
	}
	opts := images.Options{Width: 8, Height: 8, MaxBytes: int64(len(good)) + 1000, MaxSide: 10_000}
	l := images.NewLoader(in, nil, opts)
	uris := make([]string, len(cases))
	for i, c := range cases {
		uris[i] = c.uri
	}
	dst := make([]float32, len(uris)*opts.Size())
	for i := range dst {
		dst[i] = 42 // what a bad image must not leave
	}
	res, err := l.Load(t.Context(), uris, dst)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		tensor := dst[i*opts.Size() : (i+1)*opts.Size()]
		switch {
		case c.want == "":
			if res[i].Err != nil {
				t.Errorf("%q: %v, want a good image", c.uri, res[i].Err)
			}
			if tensor[0] != 1 { // red, top left
				t.Errorf("%q: red channel %g at the top left, want 1", c.uri, tensor[0])
			}
		case res[i].Err == nil || res[i].Err.Reason != c.want || res[i].Err.URI != c.uri:
			t.Errorf("%q: %v, want reason %s", c.uri, res[i].Err, c.want)
		default:
			for _, v := range tensor {
				if v != 0 {
					t.Fatalf("%q (%s): tensor not zeros", c.uri, c.want)
				}
			}
		}
	}
}

// bomb is a valid PNG header announcing w × h pixels, with a few bytes of
// data: a decoder that trusted it would allocate w × h × 4 bytes.
func bomb(t *testing.T, w, h uint32) []byte {
	t.Helper()
	data := encode(t, "png", image.NewGray(image.Rect(0, 0, 1, 1)))
	// The IHDR chunk: length (4), "IHDR" (4), width, height, ..., then its
	// CRC over type and data.
	ihdr := data[8:]
	be := func(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
	be(ihdr[8:12], w)
	be(ihdr[12:16], h)
	be(ihdr[21:25], crc32.ChecksumIEEE(ihdr[4:21]))
	return data
}

// The content key is the CRC32C of the bytes and their size: computed on a
// local store, from the object's metadata on GCS, the same either way.
func TestContentKey(t *testing.T) {
	data := encode(t, "png", split(64, 32))
	want := images.Key{CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), Size: int64(len(data))}
	local := store.NewFileBucket(t.TempDir())
	put(t, local, "a.png", data)
	gcs, _ := storetest.FakeGCS(t, "ads", "")
	put(t, gcs, "a.png", data)
	for name, b := range map[string]store.Bucket{"local": local, "gcs": gcs} {
		res, err := images.NewLoader(b, nil, images.Options{}).Load(t.Context(), []string{"a.png"}, make([]float32, images.Options{}.Size()))
		if err != nil || res[0].Err != nil {
			t.Fatal(name, err, res[0].Err)
		}
		if res[0].Key != want {
			t.Errorf("%s: key %+v, want %+v", name, res[0].Key, want)
		}
		// Keys, which decodes nothing, gives the same key, and says why
		// an object cannot be used.
		keys, err := images.NewLoader(b, nil, images.Options{}).Keys(t.Context(), []string{"a.png", "gone.png", "../up.png"})
		if err != nil {
			t.Fatal(name, err)
		}
		if keys[0].Key != want || keys[0].Err != nil {
			t.Errorf("%s: Keys gave %+v, want %+v", name, keys[0], want)
		}
		if keys[1].Err == nil || keys[1].Err.Reason != images.Missing || keys[2].Err == nil || keys[2].Err.Reason != images.BadURI {
			t.Errorf("%s: Keys of a missing object and a bad URI: %+v, %+v", name, keys[1].Err, keys[2].Err)
		}
	}
}

// gs:// URIs are read from their bucket on GCS (fake-gcs-server), each
// bucket opened once; keys relative to the input store from the input
// store.
func TestGCSURIs(t *testing.T) {
	creatives, srv := storetest.FakeGCS(t, "creatives", "")
	srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "creatives", Name: "2020-09/ad1.gif"},
		Content:     encode(t, "gif", split(64, 32)),
	})
	in := store.NewFileBucket(t.TempDir())
	put(t, in, "local.png", encode(t, "png", split(64, 32)))
	var opened atomic.Int32
	open := func(_ context.Context, uri string) (store.Bucket, error) {
		opened.Add(1)
		if uri != "gs://creatives" {
			return nil, errors.New("no bucket " + uri)
		}
		return creatives, nil
	}
	l := images.NewLoader(in, open, images.Options{Width: 8, Height: 8})
	uris := []string{"gs://creatives/2020-09/ad1.gif", "local.png", "gs://creatives/2020-09/ad1.gif", "gs://creatives/2020-09/none.gif"}
	dst := make([]float32, len(uris)*l.Options().Size())
	res, err := l.Load(t.Context(), uris, dst)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []images.Reason{"", "", "", images.Missing} {
		if got := res[i]; (got.Err == nil) != (want == "") || got.Err != nil && got.Err.Reason != want {
			t.Errorf("%s: %+v, want %q", uris[i], got.Err, want)
		}
	}
	if res[0].Key != res[2].Key || dst[0] != 1 {
		t.Errorf("the same object twice: keys %+v and %+v; red %g", res[0].Key, res[2].Key, dst[0])
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the bucket opened %d times, want once", n)
	}
}

// A store that fails (after its retries) fails the call: it is not bad
// input, and no result is returned.
func TestStoreFailureFailsTheLoad(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	put(t, in, "a.png", encode(t, "png", split(8, 8)))
	l := images.NewLoader(failing{in}, nil, images.Options{Width: 4, Height: 4})
	_, err := l.Load(t.Context(), []string{"a.png"}, make([]float32, l.Options().Size()))
	if err == nil || !errors.Is(err, errUnavailable) {
		t.Fatalf("err %v, want the store's", err)
	}
}

var errUnavailable = errors.New("503 unavailable")

type failing struct{ store.Bucket }

func (failing) NewReader(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, errUnavailable
}

// At most Workers images are read (and so held) at once, however many
// calls run at once.
func TestWorkersBoundTheReads(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	var uris []string
	for i := range 40 {
		key := "img/" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".png"
		put(t, in, key, encode(t, "png", split(32, 16)))
		uris = append(uris, key)
	}
	// Each read lasts a few milliseconds, so that reads beyond the bound
	// would overlap and show (the bound itself does not depend on it).
	c := &counting{Bucket: in, hold: 3 * time.Millisecond}
	l := images.NewLoader(c, nil, images.Options{Width: 8, Height: 8, Workers: 3})
	// Four calls at once, as scoring workers make them: 3 in all.
	var g errgroup.Group
	for k := range 4 {
		part := uris[k*10 : (k+1)*10]
		g.Go(func() error {
			_, err := l.Load(t.Context(), part, make([]float32, len(part)*l.Options().Size()))
			return err
		})
		g.Go(func() error { _, err := l.Keys(t.Context(), part); return err })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if c.peak.Load() > 3 || c.peak.Load() < 1 {
		t.Errorf("%d reads at once, want 1 to 3", c.peak.Load())
	}
}

// counting counts the objects open for reading at once.
type counting struct {
	store.Bucket
	open, peak atomic.Int32
	hold       time.Duration // how long opening an object takes
}

func (c *counting) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	time.Sleep(c.hold)
	r, err := c.Bucket.NewReader(ctx, key, gen)
	if err != nil {
		c.open.Add(-1)
		return nil, err
	}
	return closer{r, func() { c.open.Add(-1) }}, nil
}

type closer struct {
	io.ReadCloser
	done func()
}

func (c closer) Close() error { c.done(); return c.ReadCloser.Close() }
