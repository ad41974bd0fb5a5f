// Package demodata generates the embedded demo data: ad dumps and queued
// prediction requests whose clicks are drawn from a known click function, so
// that tests can compare a trained model against the truth. It is seeded and
// deterministic: the same seed gives the same click function and, with the
// same month and count, the same rows.
package demodata

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Row is one served ad (or one prediction request, without Clicked).
type Row struct {
	ID       string
	ServedAt time.Time
	Site     string
	Category string
	Device   string
	Country  string
	Width    int
	Height   int
	BidPrice float64 // NaN when missing
	Position int
	Clicked  int
	TrueProb float64 // the click probability the row's click was drawn from
	// Image is the URI of the ad's banner (ImageRows), relative to the
	// store: banners/<creative>.png; "" in rows without images.
	Image string
}

// Columns of the CSV dumps, in order. Clicked is the label.
var Columns = []string{"ad_id", "served_at", "site_domain", "ad_category", "device", "country", "ad_width", "ad_height", "bid_price", "position", "clicked"}

var (
	devices   = []string{"mobile", "desktop", "tablet"}
	devWeight = []float64{0.6, 0.3, 0.1}
	sizes     = [][2]int{{300, 250}, {728, 90}, {160, 600}, {320, 50}, {300, 600}, {970, 250}}
)

// Generator holds one click function.
type Generator struct {
	seed                    uint64
	sites, categories, ctry []string
	siteEff, catEff         []float64
	ctryEff, devEff         []float64
	crossEff                [][]float64 // device × category
	zipf                    []float64   // cumulative site popularity
}

// New returns the generator of a seed's click function.
func New(seed uint64) *Generator {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	g := &Generator{seed: seed}
	for i := range 200 {
		g.sites = append(g.sites, fmt.Sprintf("site%03d.example", i))
		g.siteEff = append(g.siteEff, r.NormFloat64()*0.7)
	}
	for i := range 12 {
		g.categories = append(g.categories, fmt.Sprintf("cat%02d", i))
		g.catEff = append(g.catEff, r.NormFloat64()*0.4)
	}
	for _, c := range []string{"US", "GB", "DE", "FR", "JP", "BR", "IN", "CA", "AU", "NL"} {
		g.ctry = append(g.ctry, c)
		g.ctryEff = append(g.ctryEff, r.NormFloat64()*0.2)
	}
	g.devEff = []float64{0.3, -0.2, 0.1}
	for range devices {
		row := make([]float64, len(g.categories))
		for j := range row {
			row[j] = r.NormFloat64() * 0.5
		}
		g.crossEff = append(g.crossEff, row)
	}
	total := 0.0
	for i := range g.sites {
		total += 1 / math.Pow(float64(i+1), 1.1)
		g.zipf = append(g.zipf, total)
	}
	for i := range g.zipf {
		g.zipf[i] /= total
	}
	return g
}

func pick(r *rand.Rand, cum []float64) int {
	u := r.Float64()
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	return len(cum) - 1
}

// Rows generates n rows served in [from, to), ids prefixed with prefix. The
// rows depend only on the generator's seed and the arguments.
func (g *Generator) Rows(prefix string, n int, from, to time.Time) []Row {
	return g.rows(prefix, n, from, to, nil)
}

// ImageRows is Rows with a banner per row, one of creatives drawn
// uniformly (CreativeOf names its look), whose Logit joins the row's click
// logit: what a model can only learn from the images (BannerURI, Draw).
func (g *Generator) ImageRows(prefix string, n int, from, to time.Time, creatives []string) []Row {
	return g.rows(prefix, n, from, to, creatives)
}

// BannerURI is where a creative's banner lies in the demo store.
func BannerURI(creative string) string { return "banners/" + creative + ".png" }

func (g *Generator) rows(prefix string, n int, from, to time.Time, creatives []string) []Row {
	r := rand.New(rand.NewPCG(g.seed, Hash64(prefix)))
	// The creatives' own stream: rows without them are what they were.
	rc := rand.New(rand.NewPCG(g.seed, Hash64("creatives/"+prefix)))
	devCum := []float64{devWeight[0], devWeight[0] + devWeight[1], 1}
	span := to.Sub(from)
	out := make([]Row, n)
	for i := range out {
		site := pick(r, g.zipf)
		cat := r.IntN(len(g.categories))
		dev := pick(r, devCum)
		ctry := r.IntN(len(g.ctry))
		size := sizes[r.IntN(len(sizes))]
		bid := math.Exp(r.NormFloat64()*0.8 + 0.5)
		if r.Float64() < 0.05 {
			bid = math.NaN()
		}
		pos := 1 + r.IntN(6)
		at := from.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Second).UTC()

		logit := -1.6 + g.siteEff[site] + g.catEff[cat] + g.devEff[dev] + g.ctryEff[ctry] + g.crossEff[dev][cat]
		logit += 0.5 * math.Sin(2*math.Pi*float64(at.Hour())/24)
		if !math.IsNaN(bid) {
			logit += 0.4 * math.Log1p(bid)
		}
		logit -= 0.15 * float64(pos)
		if size[1] >= 250 {
			logit += 0.25
		}
		image := ""
		if len(creatives) > 0 {
			c := creatives[rc.IntN(len(creatives))]
			image = BannerURI(c)
			logit += CreativeOf(c).Logit()
		}
		p := 1 / (1 + math.Exp(-logit))
		clicked := 0
		if r.Float64() < p {
			clicked = 1
		}
		out[i] = Row{
			ID: fmt.Sprintf("%s-%06d", prefix, i+1), ServedAt: at,
			Site: g.sites[site], Category: g.categories[cat], Device: devices[dev], Country: g.ctry[ctry],
			Width: size[0], Height: size[1], BidPrice: bid, Position: pos, Clicked: clicked, TrueProb: p,
			Image: image,
		}
	}
	return out
}

// Hash64 is FNV-1a, used to derive per-file seeds.
func Hash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func (r Row) fields(withLabel, withImage bool) []string {
	bid := ""
	if !math.IsNaN(r.BidPrice) {
		bid = strconv.FormatFloat(r.BidPrice, 'f', 4, 64)
	}
	f := []string{
		r.ID, r.ServedAt.Format(time.RFC3339), r.Site, r.Category, r.Device, r.Country,
		strconv.Itoa(r.Width), strconv.Itoa(r.Height), bid, strconv.Itoa(r.Position),
	}
	if withImage {
		f = append(f, r.Image)
	}
	if withLabel {
		f = append(f, strconv.Itoa(r.Clicked))
	}
	return f
}

// ImageColumns are the columns of a dump of ImageRows: Columns with
// image_uri before the label.
var ImageColumns = append(append(slices.Clone(Columns[:len(Columns)-1]), "image_uri"), Columns[len(Columns)-1])

// WriteCSV writes rows as a CSV dump with a header (ImageColumns for rows
// with images); gzip-compressed if gz.
func WriteCSV(w io.Writer, rows []Row, gz bool) error {
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(w)
		zw.ModTime = time.Unix(0, 0) // reproducible bytes
		w = zw
	}
	cw := csv.NewWriter(w)
	// Rows with images: any of them has one (a row may have none).
	header, withImage := Columns, slices.ContainsFunc(rows, func(r Row) bool { return r.Image != "" })
	if withImage {
		header = ImageColumns
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r.fields(true, withImage)); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// ReadDump reads a gzip CSV dump file whole: the header record, then the
// rows (for tests that change a dump and write it back with WriteDump).
func ReadDump(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read dump %s: %w", path, err)
	}
	recs, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read dump %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read dump %s: no header", path)
	}
	return recs, nil
}

// WriteDump writes records (the header first) as a gzip CSV dump file,
// replacing path.
func WriteDump(path string, records [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	zw.ModTime = time.Unix(0, 0) // reproducible bytes
	cw := csv.NewWriter(zw)
	if err := cw.WriteAll(records); err != nil {
		_ = f.Close()
		return fmt.Errorf("write dump %s: %w", path, err)
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		return fmt.Errorf("write dump %s: %w", path, err)
	}
	return nil
}

// WriteJSONL writes rows as queued prediction requests, one JSON object per
// line, with request_id instead of ad_id and no label.
func WriteJSONL(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		req := map[string]any{
			"request_id": r.ID, "served_at": r.ServedAt.Format(time.RFC3339), "site_domain": r.Site,
			"ad_category": r.Category, "device": r.Device, "country": r.Country,
			"ad_width": r.Width, "ad_height": r.Height, "position": r.Position,
		}
		if !math.IsNaN(r.BidPrice) {
			req["bid_price"] = math.Round(r.BidPrice*1e4) / 1e4
		}
		if err := enc.Encode(req); err != nil {
			return err
		}
	}
	return nil
}

// WriteMonth writes a month of dumps under out/dumps/<month>/: files gzip
// CSV files named ads-<month>-<part>.csv.gz, part from 000, holding the
// rows gen gives for each (name is the file's name without extension,
// which seeds the rows; from and to bound the month).
func WriteMonth(out, month string, files int, gen func(name string, part int, from, to time.Time) []Row) error {
	from, err := time.Parse("2006-01", month)
	if err != nil {
		return err
	}
	to := from.AddDate(0, 1, 0)
	for part := range files {
		name := fmt.Sprintf("ads-%s-%03d", month, part)
		if err := WriteFile(filepath.Join(out, "dumps", month, name+".csv.gz"), func(f *os.File) error {
			return WriteCSV(f, gen(name, part, from, to), true)
		}); err != nil {
			return err
		}
	}
	return nil
}

// WriteBanner writes a creative's banner (BannerPNG) at BannerURI under
// the store folder out.
func WriteBanner(out, creative string, w, h int) error {
	data, err := BannerPNG(creative, w, h)
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(out, BannerURI(creative)), func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// BannerPNG is a creative's banner drawn w × h, PNG-encoded.
func BannerPNG(creative string, w, h int) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, CreativeOf(creative).Draw(w, h)); err != nil {
		return nil, fmt.Errorf("encode banner %s: %w", creative, err)
	}
	return buf.Bytes(), nil
}

// WriteFile creates path (and its folders) and fills it.
func WriteFile(path string, fill func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		_ = f.Close() // the write already failed; that error is the one to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
