package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
	"github.com/adtech/scorer/writers/table"
)

// creatives names n demo creatives from first.
func creatives(first, n int) []string {
	var s []string
	for i := first; i < first+n; i++ {
		s = append(s, fmt.Sprintf("cr%03d", i))
	}
	return s
}

func bannerPNG(t testing.TB, creative string) []byte {
	t.Helper()
	data, err := demodata.BannerPNG(creative, 120, 100)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// imageDump writes a month of n demo rows with banners of the creatives
// (their Image set by uri) as one gzip CSV dump under in.
func imageDump(t testing.TB, in, month string, n int, names []string, uri func(row int, r demodata.Row) string) {
	t.Helper()
	from, _ := time.Parse("2006-01", month)
	rows := demodata.New(7).ImageRows("img-"+month, n, from, from.AddDate(0, 1, 0), names)
	for i := range rows {
		rows[i].Image = uri(i, rows[i])
	}
	path := filepath.Join(in, "dumps", month, "ads.csv.gz")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.WriteCSV(f, rows, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// trainImageModel trains a small model with the demo spec and a banner
// image feature on a month of rows whose banners lie in the input store.
func trainImageModel(t testing.TB, in string) *bundle.Bundle {
	t.Helper()
	spec, err := features.LoadSpec("../../testdata/features-images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creatives(0, 30) {
		if err := store.WriteAll(t.Context(), store.NewFileBucket(in), demodata.BannerURI(c), bannerPNG(t, c), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	imageDump(t, in, "2020-08", 3000, creatives(0, 20), func(_ int, r demodata.Row) string { return r.Image })
	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{
		Kind: bundle.WideDeep, EmbeddingDim: 4, Hidden: []int{8},
		Image: &bundle.ImageTower{Channels: []int{4, 8}, Embedding: 4},
	}
	cfg.Epochs, cfg.BatchSize, cfg.Seed = 1, 256, 1
	bu, err := Train(context.Background(), TrainJob{
		Input: store.NewFileBucket(in), Dir: "dumps", Month: "2020-08", Spec: spec,
		Name: "ctr-images", Version: "t1", Config: cfg, BatchSize: 1024, CSV: readers.CSVOptions{Header: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bu.Inputs.Images != 1 || bu.Inputs.ImageSize != 32 || bu.Weights["image.conv1.w"] == nil || bu.Profile == nil {
		t.Fatalf("trained bundle: inputs %+v, tower weights %v, profile %v", bu.Inputs, bu.Weights["image.conv1.w"] != nil, bu.Profile != nil)
	}
	// The skew guard has rows, with their embeddings, and the probe.
	if len(bu.Reference) != ReferenceRows || len(bu.Reference[0].ImageEmb) != 4 || len(bu.ImageProbe) != 4 {
		t.Fatalf("trained bundle: %d reference rows (%d embedding values), probe %v", len(bu.Reference), len(bu.Reference[0].ImageEmb), bu.ImageProbe)
	}
	return bu
}

// scoresOf are the published scores of the image test's month in the
// store at out, by ad_id.
func scoresOf(t *testing.T, db *sql.DB, out string) map[string]float64 {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf("SELECT ad_id, score FROM %s", parquetOf(t, out, demoTable, "month=2020-09")))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	m := map[string]float64{}
	for rows.Next() {
		var id string
		var s float64
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		m[id] = s
	}
	return m
}

// readsBucket records the keys read from a bucket.
type readsBucket struct {
	store.Bucket
	mu    sync.Mutex
	reads map[string]int
}

func (b *readsBucket) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	b.mu.Lock()
	b.reads[key]++
	b.mu.Unlock()
	return b.Bucket.NewReader(ctx, key, gen)
}

func (b *readsBucket) take() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reads
	b.reads = map[string]int{}
	return r
}

// TestImageScoring: a month whose banners are on GCS (fake-gcs-server),
// some of them bad, scored twice. The first run computes each distinct
// banner once and publishes the embeddings; the second starts from them:
// it reads no good banner (their keys come from GCS metadata) and computes
// nothing, and its scores are the first run's, bit for bit. Bad images
// are counted by reason and their rows scored.
func TestImageScoring(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	bu := trainImageModel(t, in)
	testImageSkewGuard(t, bu)

	gcs, _ := storetest.FakeGCS(t, "banners", "")
	for _, c := range creatives(10, 20) {
		if err := store.WriteAll(t.Context(), gcs, c+".png", bannerPNG(t, c), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	broken := bannerPNG(t, "cr000")
	if err := store.WriteAll(t.Context(), gcs, "broken.png", broken[:len(broken)/2], store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := store.WriteAll(t.Context(), gcs, "notes.txt", []byte("not an image"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	bad := map[int]string{3: "gs://banners/gone.png", 5: "gs://banners/broken.png", 8: "gs://banners/notes.txt", 13: "gs://other bucket/x.png", 21: ""}
	imageDump(t, in, "2020-09", n, creatives(10, 20), func(i int, r demodata.Row) string {
		if uri, ok := bad[i]; ok {
			return uri
		}
		return "gs://banners/" + strings.TrimPrefix(r.Image, "banners/")
	})
	counted := &readsBucket{Bucket: gcs, reads: map[string]int{}}
	open := func(_ context.Context, uri string) (store.Bucket, error) {
		if uri != "gs://banners" {
			return nil, fmt.Errorf("%w: no bucket %s", store.ErrNotExist, uri)
		}
		return counted, nil
	}
	job := ScoreJob{
		Job: BackfillJob("2020-09"), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: bu,
		Dir: "dumps/2020-09", Table: demoTable, Partition: "month=2020-09", Mode: table.Replace,
		IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
		BatchSize: 512, Workers: 2, ReadConcurrency: 1, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
		Images: ImageOptions{Open: open},
	}
	db := duck(t)
	scores := func() map[string]float64 { t.Helper(); return scoresOf(t, db, out) }

	first, err := Score(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	im := first.Images
	if im == nil || im.Misses != 20 || im.Bad != 5 {
		t.Fatalf("first run: images %+v, want 20 computed (the distinct banners) and 5 bad", im)
	}
	for reason, want := range map[string]int64{"missing": 2, "corrupt": 1, "unsupported": 1, "bad_uri": 1} {
		if im.BadByReason[reason] != want {
			t.Errorf("first run: bad images %v, want %d %s", im.BadByReason, want, reason)
		}
	}
	for _, c := range creatives(10, 20) {
		if r := counted.reads[c+".png"]; r != 1 {
			t.Errorf("first run read %s %d times, want once", c, r)
		}
	}
	counted.take()
	s1 := scores()
	if len(s1) != n {
		t.Fatalf("first run scored %d rows, want %d", len(s1), n)
	}
	// The banner is profiled like any input: its missing rate (one row
	// without a URI) in the drift table.
	var missing float64
	if err := db.QueryRow(fmt.Sprintf("SELECT missing_rate FROM %s WHERE feature = 'banner' AND kind = 'image'",
		parquetOf(t, out, DriftTable(demoTable), "month=2020-09"))).Scan(&missing); err != nil || missing != 1.0/n {
		t.Fatalf("banner's missing rate in the drift table: %v, %v; want %v", missing, err, 1.0/n)
	}
	emb := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM %s WHERE model_version = 't1' AND len(json_extract(embedding, '$')::FLOAT[]) = 4",
		parquetOf(t, out, ImageEmbeddingsTable(demoTable), "month=2020-09")))
	if emb != 20 {
		t.Fatalf("the embeddings table holds %d embeddings of 4 values, want 20", emb)
	}

	job.RunID = ""
	second, err := Score(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if im := second.Images; im == nil || im.Misses != 0 || im.Hits == 0 || im.HitRate() != 1 {
		t.Fatalf("second run: images %+v, want every banner from the cache", im)
	}
	for key, r := range counted.take() {
		if key != "broken.png" && key != "notes.txt" {
			t.Errorf("second run read %s %d times: its embedding was cached", key, r)
		}
	}
	s2 := scores()
	for id, s := range s1 {
		if s2[id] != s {
			t.Fatalf("row %s: score %v from the cache, %v computed", id, s2[id], s)
		}
	}
	// The replaced partition keeps its embeddings.
	if n := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM %s", parquetOf(t, out, ImageEmbeddingsTable(demoTable), "month=2020-09"))); n != 20 {
		t.Fatalf("after the second run the embeddings table holds %d rows, want 20", n)
	}

	// Under on_bad_image: reject, the rows with a bad image are bad rows:
	// in the rejects table with their file, row, column, URI and reason,
	// the others scored as before.
	out3 := t.TempDir()
	job.Output, job.RunID, job.Images.OnBadImage = store.NewFileBucket(out3), "", scoring.BadImageReject
	if job.BadRows, err = ParseBadRowLimit("10"); err != nil {
		t.Fatal(err)
	}
	third, err := Score(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if third.RowsRead != n-5 || third.RowsRejected != 5 || third.Images.Bad != 5 {
		t.Fatalf("reject run: %d rows scored, %d rejected, images %+v; want %d, 5, 5 bad", third.RowsRead, third.RowsRejected, third.Images, n-5)
	}
	rows, err := db.Query(fmt.Sprintf("SELECT file, \"row\", \"column\", value, reason FROM %s ORDER BY \"row\"", parquetOf(t, out3, RejectsTable(demoTable), "month=2020-09")))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var file, col, value, reason string
		var row int64
		if err := rows.Scan(&file, &row, &col, &value, &reason); err != nil {
			t.Fatal(err)
		}
		if file != "dumps/2020-09/ads.csv.gz" || col != "image_uri" || !strings.HasPrefix(reason, "image ") || value != bad[int(row)-1] {
			t.Errorf("reject %s row %d column %s value %q reason %q: want the file, the image column, the URI of row %d (%q) and why", file, row, col, value, reason, row, bad[int(row)-1])
		}
		got = append(got, fmt.Sprint(row))
	}
	closeRows(t, rows)
	if strings.Join(got, ",") != "4,6,9,14,22" {
		t.Fatalf("rejected rows %v, want 4,6,9,14,22", got)
	}
	for id, s := range scoresOf(t, db, out3) {
		if s1[id] != s {
			t.Fatalf("row %s: score %v under reject, %v before", id, s, s1[id])
		}
	}

	// A bad image fails a run under on_bad_image: fail, naming the URI,
	// and nothing is published.
	out2 := t.TempDir()
	job.Output, job.RunID, job.Images.OnBadImage = store.NewFileBucket(out2), "", scoring.BadImageFail
	_, err = Score(t.Context(), job)
	var ie *images.Error
	if !errors.Is(err, ErrBadInput) || !errors.Is(err, scoring.ErrBadImage) || !errors.As(err, &ie) || !strings.Contains(err.Error(), "ad_id=") {
		t.Fatalf("run with bad images under fail: %v, want bad input naming the row", err)
	}
	if _, err := os.Stat(filepath.Join(out2, demoTable)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed run published %s: %v", demoTable, err)
	}
}

// BenchmarkEndToEndImages: backfills of 200k demo rows, each with one of
// 1000 banners (120 × 100 PNG) in the local input store, with a small
// image model (trained in the set-up). cache=cold scores into a fresh
// output store each time: each banner is decoded and embedded once, and
// every later batch's lookups of it hit (4096-row batches see about 980 of
// the 1000 each: a hit rate near 98%). cache=warm scores into the store
// of an earlier run, whose persisted embeddings it starts from: nothing
// is decoded (on a local store each banner is still read once, for its
// content key; on GCS the key is metadata). Reports rows/s and the hit
// rate.
func BenchmarkEndToEndImages(b *testing.B) {
	in := b.TempDir()
	bu := trainImageModel(b, in)
	const rows, banners = 200_000, 1000
	names := creatives(0, banners)
	for _, c := range names[30:] { // trainImageModel wrote the first 30
		if err := store.WriteAll(context.Background(), store.NewFileBucket(in), demodata.BannerURI(c), bannerPNG(b, c), store.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	imageDump(b, in, "2020-09", rows, names, func(_ int, r demodata.Row) string { return r.Image })
	run := func(out store.Bucket) *Summary {
		sum, err := Score(context.Background(), ScoreJob{
			Job: BackfillJob("2020-09"), Input: store.NewFileBucket(in), Output: out, Bundle: bu,
			Dir: "dumps/2020-09", Table: demoTable, Partition: "month=2020-09", Mode: table.Replace,
			IDColumns: []string{"ad_id"}, RequireRows: true,
			BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: 10 * time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		return sum
	}
	warm := store.NewFileBucket(b.TempDir())
	run(warm) // also the untimed first run of the process
	for _, cache := range []string{"cold", "warm"} {
		b.Run("cache="+cache, func(b *testing.B) {
			var n int64
			var st scoring.ImageStats
			for b.Loop() {
				b.StopTimer()
				out := warm
				if cache == "cold" {
					out = store.NewFileBucket(b.TempDir())
				}
				b.StartTimer()
				sum := run(out)
				n += sum.RowsRead
				st.Hits += sum.Images.Hits
				st.Misses += sum.Images.Misses
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(100*st.HitRate(), "%hits")
		})
	}
}

// testImageSkewGuard: the bundle's reference rows and probe survive a
// save and load and pass the skew guard; a changed tower weight, which
// the rows alone (scored with their recorded embeddings) could not show,
// fails it on the probe, and a changed row embedding on the score.
func testImageSkewGuard(t *testing.T, bu *bundle.Bundle) {
	t.Helper()
	dir := store.NewFileBucket(t.TempDir())
	if err := bu.Save(t.Context(), dir, ""); err != nil {
		t.Fatal(err)
	}
	loaded, err := bundle.Load(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := scoring.CheckReference(loaded); err != nil || n != ReferenceRows {
		t.Fatalf("skew guard of the saved bundle: %d rows, %v", n, err)
	}
	w := loaded.Weights["image.conv0.w"].Data
	was := w[0]
	w[0] += 0.5
	var se *scoring.SkewError
	if _, err := scoring.CheckReference(loaded); !errors.As(err, &se) || !se.Tower {
		t.Fatalf("skew guard with a changed tower weight: %v, want the probe to differ", err)
	}
	w[0] = was
	loaded.Reference[3].ImageEmb[0] += 1
	if _, err := scoring.CheckReference(loaded); !errors.As(err, &se) || se.Tower || se.Row != 4 {
		t.Fatalf("skew guard with a changed embedding: %v, want row 4's score to differ", err)
	}
}
