package scoring_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// countingLoader counts the images a stage decodes.
type countingLoader struct {
	*images.Loader
	loaded atomic.Int64
}

func (l *countingLoader) Load(ctx context.Context, uris []string, dst []float32) ([]images.Result, error) {
	l.loaded.Add(int64(len(uris)))
	return l.Loader.Load(ctx, uris, dst)
}

func pngOf(t *testing.T, c color.RGBA, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	img.Pix[0] = 255 - c.R // not uniform: the tower sees a corner
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImageStage: each row gets its image's embedding (the tower's output
// for the decoded image), the missing embedding when its image cannot be
// used (counted by reason), each distinct content is decoded once (two
// URIs of the same bytes share an entry), cached embeddings are the ones
// computed, and a cache preloaded from a run's new entries decodes
// nothing.
func TestImageStage(t *testing.T) {
	ctx := context.Background()
	in := store.NewFileBucket(t.TempDir())
	red, blue := pngOf(t, color.RGBA{200, 30, 30, 255}, 40, 30), pngOf(t, color.RGBA{20, 40, 220, 255}, 30, 40)
	for key, data := range map[string][]byte{
		"img/red.png": red, "img/red-copy.png": red, "img/blue.png": blue,
		"img/broken.png": red[:len(red)/2], "img/text.png": []byte("not an image"),
	} {
		if err := store.WriteAll(ctx, in, key, data, store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bu := modeltest.WithImages(modeltest.RandomBundle(bundle.WideDeep, 1, []int{3}, 2, []int{4}, 1),
		2, 16, bundle.ImageTower{Channels: []int{3, 4}, Embedding: 3}, 2)
	loader := &countingLoader{Loader: images.NewLoader(in, nil, images.Options{Width: 16, Height: 16, Workers: 2})}
	st, err := scoring.NewImageStage(bu, loader, "")
	if err != nil {
		t.Fatal(err)
	}
	uris := []string{
		"img/red.png", "img/blue.png",
		"img/red-copy.png", "",
		"img/none.png", "img/broken.png",
		"img/text.png", "img/red.png",
		"../escape.png", "img/blue.png",
	}
	b := &features.Batch{N: len(uris) / 2, I: 2, Images: uris}

	// What each good image must give: the tower on the decoded image.
	tw, err := scoring.NewTower(bu)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for _, uri := range []string{"img/red.png", "img/blue.png"} {
		x := make([]float32, tw.InputSize())
		if _, err := loader.Loader.Load(ctx, []string{uri}, x); err != nil {
			t.Fatal(err)
		}
		want[uri] = make([]float32, tw.Dim())
		tw.Embed(x, 1, want[uri])
	}
	want["img/red-copy.png"] = want["img/red.png"]
	check := func(b *features.Batch) {
		t.Helper()
		e := tw.Dim()
		for i, uri := range b.Images {
			w, ok := want[uri]
			if !ok {
				w = bu.Weights["image.missing"].Data
			}
			if got := b.ImageEmb[i*e : (i+1)*e]; !slices.Equal(got, w) {
				t.Fatalf("row %d image %d (%q): embedding %v, want %v", i/2, i%2, uri, got, w)
			}
		}
	}

	if err := st.Embed(ctx, b); err != nil {
		t.Fatal(err)
	}
	check(b)
	s := st.Stats()
	if s.Misses != 2 || s.Hits != 0 || s.Bad != 5 || loader.loaded.Load() != 4 {
		t.Fatalf("first batch: %+v, %d decoded; want 2 misses (red, blue), 0 hits, 5 bad, 4 decoded (red, blue, broken, text: the copy of red shares its key)", s, loader.loaded.Load())
	}
	for reason, n := range map[string]int64{"missing": 2, "corrupt": 1, "unsupported": 1, "bad_uri": 1} {
		if s.BadByReason[reason] != n {
			t.Errorf("bad images by reason %v, want %d %s", s.BadByReason, n, reason)
		}
	}

	b2 := &features.Batch{N: b.N, I: 2, Images: slices.Clone(uris)}
	if err := st.Embed(ctx, b2); err != nil {
		t.Fatal(err)
	}
	check(b2)
	if s := st.Stats(); s.Misses != 2 || s.Hits != 2 || loader.loaded.Load() != 4 {
		t.Fatalf("second batch: %+v, %d decoded; want the 2 images from the cache, nothing decoded", s, loader.loaded.Load())
	}

	// A new run with the first one's cache: nothing decoded.
	fresh := &countingLoader{Loader: images.NewLoader(in, nil, images.Options{Width: 16, Height: 16})}
	st2, err := scoring.NewImageStage(bu, fresh, scoring.BadImageMissing)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.New(func(k images.Key, emb []float32) error { n++; return st2.Preload(k, emb, false) }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d new embeddings, want 2", n)
	}
	b3 := &features.Batch{N: 1, I: 2, Images: []string{"img/red-copy.png", "img/blue.png"}}
	if err := st2.Embed(ctx, b3); err != nil {
		t.Fatal(err)
	}
	check(b3)
	if s := st2.Stats(); s.Hits != 2 || s.Misses != 0 || fresh.loaded.Load() != 0 {
		t.Fatalf("preloaded run: %+v, %d decoded; want 2 hits and nothing decoded", s, fresh.loaded.Load())
	}
	if err := st2.New(func(images.Key, []float32) error { return errors.New("preloaded entries are not new") }); err != nil {
		t.Fatal(err)
	}
}

// Under the fail policy a bad image fails the batch as bad input, naming
// the row and the URI.
func TestImageStageFail(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	bu := modeltest.WithImages(modeltest.RandomBundle(bundle.Deep, 1, nil, 0, nil, 1),
		1, 8, bundle.ImageTower{Channels: []int{2}, Embedding: 2}, 2)
	st, err := scoring.NewImageStage(bu, images.NewLoader(in, nil, images.Options{Width: 8, Height: 8}), scoring.BadImageFail)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Embed(context.Background(), &features.Batch{N: 2, I: 1, Images: []string{"", "img/gone.png"}})
	var re *scoring.RowError
	if !errors.Is(err, scoring.ErrBadImage) || !errors.Is(err, scoring.ErrInput) || !errors.As(err, &re) || re.Row != 0 {
		t.Fatalf("error %v, want a bad image (bad input) at row 0", err)
	}
	if _, err := scoring.NewImageStage(bu, nil, "skip"); err == nil {
		t.Fatal("an unknown policy was accepted")
	}
}
