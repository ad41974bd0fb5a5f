package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// obs is one scored row as the reference sees it: its score, its label
// (NaN when unlabelled) and its device (SegmentNull when it has none).
type obs struct {
	id     string
	score  float64
	label  float64
	device string
}

// labelInfo is a row of a labels source, read independently of scorer.
type labelInfo struct {
	label  float64 // NaN when empty
	device string  // SegmentNull when empty
}

// demoLabels reads the demo month's dumps with DuckDB: clicked and device
// by ad_id.
func demoLabels(t *testing.T, db *sql.DB) map[string]labelInfo {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf("SELECT ad_id, clicked::DOUBLE, device FROM read_csv('%s', header = true, all_varchar = true)", demoCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	out := map[string]labelInfo{}
	for rows.Next() {
		var id string
		var label sql.NullFloat64
		var device sql.NullString
		if err := rows.Scan(&id, &label, &device); err != nil {
			t.Fatal(err)
		}
		li := labelInfo{label: math.NaN(), device: SegmentNull}
		if label.Valid {
			li.label = label.Float64
		}
		if device.Valid {
			li.device = device.String
		}
		if _, dup := out[id]; dup {
			t.Fatalf("demo dumps: ad_id %s twice", id)
		}
		out[id] = li
	}
	return out
}

// modelScores reads one model's scores of a partition with DuckDB: from
// the score table for the champion, else from the challengers table.
func modelScores(t *testing.T, db *sql.DB, out, idCol string, tbl, partition string, bu *bundle.Bundle, champion bool) map[string]float64 {
	t.Helper()
	rel := parquetOf(t, out, tbl, partition)
	if !champion {
		rel = parquetOf(t, out, ChallengersTable(tbl), partition)
	}
	rows, err := db.Query("SELECT "+idCol+", score::DOUBLE FROM "+rel+" WHERE model_name = ? AND model_version = ?", bu.Name, bu.Version)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	scores := map[string]float64{}
	for rows.Next() {
		var id string
		var s float64
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		scores[id] = s
	}
	if len(scores) == 0 {
		t.Fatalf("no scores of %s %s in %s", bu.Name, bu.Version, rel)
	}
	return scores
}

// joinLabels pairs scores with labels by id; ids without a labels row are
// unlabelled and have no device.
func joinLabels(scores map[string]float64, labels map[string]labelInfo) []obs {
	out := make([]obs, 0, len(scores))
	for id, s := range scores {
		o := obs{id: id, score: s, label: math.NaN(), device: SegmentNull}
		if li, ok := labels[id]; ok {
			o.label, o.device = li.label, li.device
		}
		out = append(out, o)
	}
	return out
}

// refBin and refResult are the reference's metrics, computed here from
// their definitions (docs/evaluation.md), not with package metrics.
type refBin struct {
	rows                 int64
	min, max, mean, rate float64
}

type refResult struct {
	scored, rows, positives                        int64
	labelRate, meanScore, auc, logLoss, brier, cll float64
	ece                                            float64
	bins                                           []refBin
}

func clip7(p float64) float64 { return math.Min(math.Max(p, 1e-7), 1-1e-7) }

// reference computes the metrics of the rows keep selects.
func reference(all []obs, keep func(obs) bool, bins int) refResult {
	var r refResult
	var ls []obs
	for _, o := range all {
		if !keep(o) {
			continue
		}
		r.scored++
		if !math.IsNaN(o.label) {
			ls = append(ls, o)
		}
	}
	n := len(ls)
	r.rows = int64(n)
	if n == 0 {
		return r
	}
	var sumS, sumLL, sumB float64
	for _, o := range ls {
		if o.label == 1 {
			r.positives++
		}
		sumS += o.score
		q := clip7(o.score)
		sumLL += -o.label*math.Log(q) - (1-o.label)*math.Log(1-q)
		sumB += (o.score - o.label) * (o.score - o.label)
	}
	fn := float64(n)
	r.labelRate, r.meanScore, r.logLoss, r.brier = float64(r.positives)/fn, sumS/fn, sumLL/fn, sumB/fn
	q := clip7(r.labelRate)
	r.cll = -(r.labelRate*math.Log(q) + (1-r.labelRate)*math.Log(1-q))

	// AUC: the Mann-Whitney rank sum, ties at their average rank, in
	// integers (twice the ranks) so that it is exact.
	slices.SortFunc(ls, func(a, b obs) int { return cmp.Compare(a.score, b.score) })
	var twoR int64
	type group struct {
		score        float64
		rows, clicks int
	}
	var groups []group
	for i := 0; i < n; {
		j := i
		clicks := 0
		for j < n && ls[j].score == ls[i].score {
			if ls[j].label == 1 {
				clicks++
			}
			j++
		}
		twoR += int64(clicks) * int64(i+1+j) // ranks i+1..j average (i+1+j)/2
		groups = append(groups, group{ls[i].score, j - i, clicks})
		i = j
	}
	p, neg := r.positives, int64(n)-r.positives
	r.auc = math.NaN()
	if p > 0 && neg > 0 {
		r.auc = float64(twoR-p*(p+1)) / float64(2*p*neg)
	}

	// Equal-count bins over the sorted scores: bin k holds rows
	// floor(k·n/B) .. floor((k+1)·n/B)-1; a row's click counts as its tie
	// group's click rate, so that rows of equal score are alike whichever
	// bin they fall in.
	r.ece = math.NaN()
	if bins > 0 {
		rate := make([]float64, 0, n)
		for _, g := range groups {
			for range g.rows {
				rate = append(rate, float64(g.clicks)/float64(g.rows))
			}
		}
		nb := min(bins, n)
		r.ece = 0
		for k := range nb {
			lo, hi := k*n/nb, (k+1)*n/nb
			b := refBin{rows: int64(hi - lo), min: ls[lo].score, max: ls[hi-1].score}
			var s, c float64
			for i := lo; i < hi; i++ {
				s += ls[i].score
				c += rate[i]
			}
			b.mean, b.rate = s/float64(hi-lo), c/float64(hi-lo)
			r.bins = append(r.bins, b)
			r.ece += float64(hi-lo) / fn * math.Abs(b.mean-b.rate)
		}
	}
	return r
}

// closeTo compares a metric: both NaN, or within tol.
func closeTo(got, want, tol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	return math.Abs(got-want) <= tol
}

// checkRow compares an evaluation row with the reference.
func checkRow(t *testing.T, got EvalRow, want refResult) {
	t.Helper()
	name := fmt.Sprintf("%s %s (%s) %s=%q", got.ModelName, got.ModelVersion, got.Role, got.SegmentColumn, got.SegmentValue)
	if got.Scored != want.scored || got.Rows != want.rows || got.Positives != want.positives {
		t.Errorf("%s: scored, labelled, positives = %d, %d, %d; want %d, %d, %d",
			name, got.Scored, got.Rows, got.Positives, want.scored, want.rows, want.positives)
	}
	for _, m := range []struct {
		what      string
		got, want float64
		tol       float64
	}{
		{"label_rate", got.LabelRate, want.labelRate, 1e-12},
		{"mean_score", got.MeanScore, want.meanScore, 1e-9},
		{"auc", got.AUC, want.auc, 1e-12},
		{"log_loss", got.LogLoss, want.logLoss, 1e-9},
		{"brier", got.Brier, want.brier, 1e-9},
		{"constant_log_loss", got.ConstantLogLoss, want.cll, 1e-9},
		{"ece", got.ECE, want.ece, 1e-9},
	} {
		if !closeTo(m.got, m.want, m.tol) {
			t.Errorf("%s: %s = %.17g, want %.17g (diff %.3g)", name, m.what, m.got, m.want, m.got-m.want)
		}
	}
	if len(got.Bins) != len(want.bins) {
		t.Errorf("%s: %d bins, want %d", name, len(got.Bins), len(want.bins))
		return
	}
	var sum int64
	for k, b := range got.Bins {
		w := want.bins[k]
		sum += b.Rows
		if b.Rows != w.rows || b.ScoreMin != w.min || b.ScoreMax != w.max || !closeTo(b.MeanScore, w.mean, 1e-9) || !closeTo(b.LabelRate, w.rate, 1e-9) {
			t.Errorf("%s: bin %d = %+v, want %+v", name, k+1, b, w)
		}
		if k > 0 && b.MeanScore < got.Bins[k-1].MeanScore {
			t.Errorf("%s: bin %d mean score %g < bin %d's %g", name, k+1, b.MeanScore, k, got.Bins[k-1].MeanScore)
		}
	}
	if len(got.Bins) > 0 && sum != got.Rows {
		t.Errorf("%s: the bins hold %d rows, the labelled rows are %d", name, sum, got.Rows)
	}
}

// findRow is the evaluation's row of a model on a segment; nil if none.
func findRow(ev *Evaluation, bu *bundle.Bundle, col, val string) *EvalRow {
	for i, r := range ev.Rows {
		if r.ModelName == bu.Name && r.ModelVersion == bu.Version && r.SegmentColumn == col && r.SegmentValue == val {
			return &ev.Rows[i]
		}
	}
	return nil
}

// fixedClock is a clock stopped at at.
func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// evalDemo is the evaluation of the demo month's scores at out.
func evalDemo(out string, labels *LabelsSource, segments ...string) EvaluateJob {
	return EvaluateJob{
		Output: store.NewFileBucket(out), Table: demoTable, Partition: demoPartition,
		IDColumns: []string{"ad_id"}, Label: "clicked", Labels: labels,
		SegmentColumns: segments, MaxSegmentValues: 50, Bins: 10, EvalTable: "evaluations",
		LeaseTTL: time.Minute,
	}
}

// demoLabelsSource is the demo month's dumps as a labels source.
func demoLabelsSource() *LabelsSource {
	return &LabelsSource{Bucket: store.NewFileBucket(demoStoreDir), Dir: "dumps/" + demoMonth, CSV: readers.CSVOptions{Header: true}}
}

// evalColumns are the evaluations table's columns, in order.
var evalColumns = []string{
	"scored_table", "scored_partition", "model_name", "model_version", "role", "segment_column", "segment_value",
	"scored_rows", "labelled_rows", "positives", "label_rate", "mean_score", "auc", "log_loss", "constant_log_loss",
	"brier", "ece", "labels_source", "evaluated_at", "run_id",
}

// TestEvaluateAgainstReference scores the demo month with two challengers,
// evaluates it per device with the dumps as the labels source, and checks
// every row against metrics computed here from DuckDB reads of the
// published scores and of the dumps; then reads the published tables back.
func TestEvaluateAgainstReference(t *testing.T) {
	ctx := context.Background()
	champ := loadDemoBundle(t)
	pert := perturbedBundle(t, champ, "2020-09.perturbed", 7)
	nosite := noSiteBundle(t, champ, "ctr-nosite", "1")
	out := t.TempDir()
	backfillDemo(t, out, champ, pert, nosite)

	at := time.Date(2020, 10, 2, 3, 4, 5, 123456000, time.UTC)
	j := evalDemo(out, demoLabelsSource(), "device")
	j.Now = fixedClock(at)
	ev, err := Evaluate(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	labels := demoLabels(t, db)
	devices := map[string]int{}
	for _, li := range labels {
		devices[li.device]++
	}
	if len(devices) < 2 {
		t.Fatalf("the demo month has %d device values; the test needs several", len(devices))
	}
	models := []struct {
		bu       *bundle.Bundle
		champion bool
	}{{champ, true}, {pert, false}, {nosite, false}}
	if want := len(models) * (1 + len(devices)); len(ev.Rows) != want {
		t.Errorf("%d rows, want %d (%d models × (all + %d devices))", len(ev.Rows), want, len(models), len(devices))
	}
	if ev.Unmatched != 0 {
		t.Errorf("Unmatched = %d, want 0: every id has a label", ev.Unmatched)
	}
	if !strings.Contains(ev.LabelsSource, "dumps/"+demoMonth) {
		t.Errorf("LabelsSource = %q, want the dumps' folder", ev.LabelsSource)
	}
	if len(ev.Rows) > 0 && ev.Rows[0].Role != RoleChampion {
		t.Errorf("first row is a %s's; the champion comes first", ev.Rows[0].Role)
	}
	for _, m := range models {
		scores := modelScores(t, db, out, "ad_id", demoTable, demoPartition, m.bu, m.champion)
		all := joinLabels(scores, labels)
		role := RoleChallenger
		if m.champion {
			role = RoleChampion
		}
		check := func(col, val string, keep func(obs) bool) {
			t.Helper()
			got := findRow(ev, m.bu, col, val)
			if got == nil {
				t.Errorf("no row for %s %s %s=%q", m.bu.Name, m.bu.Version, col, val)
				return
			}
			if got.Role != role {
				t.Errorf("%s %s: role %q, want %q", m.bu.Name, m.bu.Version, got.Role, role)
			}
			checkRow(t, *got, reference(all, keep, j.Bins))
		}
		check("", "", func(obs) bool { return true })
		for d := range devices {
			check("device", d, func(o obs) bool { return o.device == d })
		}
	}
	// The models differ: a mix-up of their scores would show here.
	if a, b := findRow(ev, champ, "", ""), findRow(ev, nosite, "", ""); a != nil && b != nil && a.AUC == b.AUC {
		t.Errorf("champion and challenger have the same AUC %g", a.AUC)
	}

	// The published evaluations, read back as an analyst would.
	evRel := parquetOf(t, out, "evaluations", EvalPartition(demoTable, demoPartition))
	if names, _ := columnsOf(t, db, evRel); !slices.Equal(names, evalColumns) {
		t.Errorf("evaluations columns %v\nwant %v", names, evalColumns)
	}
	rows, err := db.Query("SELECT scored_table, scored_partition, model_name, model_version, role, segment_column, segment_value, " +
		"scored_rows, labelled_rows, positives, label_rate, mean_score, auc, log_loss, constant_log_loss, brier, ece, " +
		"labels_source, epoch_us(evaluated_at), run_id FROM " + evRel)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	seen := 0
	for rows.Next() {
		var tbl, part, name, version, role, col, val, src, runID string
		var scored, labelled, pos, atUS int64
		var f [7]sql.NullFloat64
		if err := rows.Scan(&tbl, &part, &name, &version, &role, &col, &val, &scored, &labelled, &pos,
			&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &src, &atUS, &runID); err != nil {
			t.Fatal(err)
		}
		seen++
		i := slices.IndexFunc(ev.Rows, func(r EvalRow) bool {
			return r.ModelName == name && r.ModelVersion == version && r.Role == role && r.SegmentColumn == col && r.SegmentValue == val
		})
		if i < 0 {
			t.Errorf("published row %s %s %s %s=%q is not in the Evaluation", name, version, role, col, val)
			continue
		}
		r := ev.Rows[i]
		if tbl != demoTable || part != demoPartition || src != ev.LabelsSource || runID != ev.RunID || atUS != at.UnixMicro() {
			t.Errorf("published row %d: table %q partition %q labels %q run %q at %d; want %q %q %q %q %d",
				i, tbl, part, src, runID, atUS, demoTable, demoPartition, ev.LabelsSource, ev.RunID, at.UnixMicro())
		}
		if scored != r.Scored || labelled != r.Rows || pos != r.Positives {
			t.Errorf("published row %d: counts %d, %d, %d; the Evaluation says %d, %d, %d", i, scored, labelled, pos, r.Scored, r.Rows, r.Positives)
		}
		for k, want := range []float64{r.LabelRate, r.MeanScore, r.AUC, r.LogLoss, r.ConstantLogLoss, r.Brier, r.ECE} {
			got := math.NaN()
			if f[k].Valid {
				got = f[k].Float64
			}
			if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Errorf("published row %d: %s = %v, the Evaluation says %v", i, evalColumns[10+k], got, want)
			}
		}
	}
	if seen != len(ev.Rows) {
		t.Errorf("%d published rows, the Evaluation has %d", seen, len(ev.Rows))
	}

	// The calibration curves: one row per bin of each evaluation row.
	calRel := parquetOf(t, out, CalibrationTable("evaluations"), EvalPartition(demoTable, demoPartition))
	wantBins := 0
	for _, r := range ev.Rows {
		wantBins += len(r.Bins)
		if len(r.Bins) == 0 {
			continue
		}
		var n, rowsSum int64
		var minMean float64
		if err := db.QueryRow("SELECT count(*), sum(rows), min(mean_score) FROM "+calRel+
			" WHERE model_name = ? AND model_version = ? AND segment_column = ? AND segment_value = ? AND run_id = ?",
			r.ModelName, r.ModelVersion, r.SegmentColumn, r.SegmentValue, ev.RunID).Scan(&n, &rowsSum, &minMean); err != nil {
			t.Fatal(err)
		}
		if n != int64(len(r.Bins)) || rowsSum != r.Rows || minMean != r.Bins[0].MeanScore {
			t.Errorf("calibration of %s %s %s=%q: %d bins holding %d rows, lowest mean %g; want %d, %d, %g",
				r.ModelName, r.ModelVersion, r.SegmentColumn, r.SegmentValue, n, rowsSum, minMean, len(r.Bins), r.Rows, r.Bins[0].MeanScore)
		}
	}
	if n := queryInt(t, db, "SELECT count(*) FROM "+calRel); n != int64(wantBins) || wantBins == 0 {
		t.Errorf("calibration table: %d rows, want %d", n, wantBins)
	}
	if len(ev.OutputFiles) == 0 {
		t.Error("Evaluation.OutputFiles is empty")
	}
}

// TestEvaluateMaxSegmentValues: with MaxSegmentValues 1 only the most
// frequent device is evaluated apart; the others pool as "(other)".
func TestEvaluateMaxSegmentValues(t *testing.T) {
	champ := loadDemoBundle(t)
	out := t.TempDir()
	backfillDemo(t, out, champ)
	j := evalDemo(out, demoLabelsSource(), "device")
	j.MaxSegmentValues = 1
	ev, err := Evaluate(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	labels := demoLabels(t, db)
	counts := map[string]int{}
	for _, li := range labels {
		counts[li.device]++
	}
	top := ""
	for d, n := range counts {
		if top == "" || n > counts[top] || n == counts[top] && d < top {
			top = d
		}
	}
	var segs []string
	for _, r := range ev.Rows {
		segs = append(segs, r.SegmentColumn+"="+r.SegmentValue)
	}
	if want := []string{"=", "device=" + top, "device=" + SegmentOther}; !slices.Equal(segs, want) {
		t.Fatalf("rows %q, want %q", segs, want)
	}
	all := joinLabels(modelScores(t, db, out, "ad_id", demoTable, demoPartition, champ, true), labels)
	checkRow(t, ev.Rows[1], reference(all, func(o obs) bool { return o.device == top }, j.Bins))
	other := reference(all, func(o obs) bool { return o.device != top }, j.Bins)
	if want := int64(len(labels) - counts[top]); other.scored != want || ev.Rows[2].Scored != want {
		t.Errorf("(other): %d rows scored, the reference %d; want %d", ev.Rows[2].Scored, other.scored, want)
	}
	checkRow(t, ev.Rows[2], other)
}

// writeFile writes a file under dir, making its folders.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sortedIDs are a map's keys in order.
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestEvaluateUnlabelledRows: a labels source that lacks some ids and has
// an empty label or device for others. Every scored row counts as scored,
// only the labelled ones in the metrics, and the missing ids as Unmatched
// (once, though a challenger scored them too).
func TestEvaluateUnlabelledRows(t *testing.T) {
	champ := loadDemoBundle(t)
	pert := perturbedBundle(t, champ, "2020-09.perturbed", 11)
	out := t.TempDir()
	backfillDemo(t, out, champ, pert)
	db := duck(t)
	demo := demoLabels(t, db)

	labels := map[string]labelInfo{}
	var b strings.Builder
	b.WriteString("ad_id,clicked,device\n")
	missing := 0
	for i, id := range sortedIDs(demo) {
		li := demo[id]
		switch {
		case i%7 == 0:
			missing++
			continue
		case i%5 == 0:
			li.label = math.NaN()
		}
		if i%11 == 0 {
			li.device = SegmentNull
		}
		labels[id] = li
		lab, dev := "", ""
		if !math.IsNaN(li.label) {
			lab = fmt.Sprint(li.label)
		}
		if li.device != SegmentNull {
			dev = li.device
		}
		fmt.Fprintf(&b, "%s,%s,%s\n", id, lab, dev)
	}
	dir := t.TempDir()
	writeFile(t, dir, "labels/2020-09.csv", b.String())

	j := evalDemo(out, &LabelsSource{Bucket: store.NewFileBucket(dir), Dir: "labels", CSV: readers.CSVOptions{Header: true}}, "device")
	ev, err := Evaluate(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Unmatched != int64(missing) || missing == 0 {
		t.Errorf("Unmatched = %d, want %d", ev.Unmatched, missing)
	}
	for _, bu := range []*bundle.Bundle{champ, pert} {
		all := joinLabels(modelScores(t, db, out, "ad_id", demoTable, demoPartition, bu, bu == champ), labels)
		r := findRow(ev, bu, "", "")
		if r == nil {
			t.Fatalf("no all-rows row for %s %s", bu.Name, bu.Version)
		}
		want := reference(all, func(obs) bool { return true }, j.Bins)
		if want.scored != int64(len(demo)) || want.rows >= want.scored {
			t.Fatalf("reference: %d scored, %d labelled; the test wants all %d scored and fewer labelled", want.scored, want.rows, len(demo))
		}
		checkRow(t, *r, want)
		// Rows without a device (no labels row, or an empty device) are
		// the "(null)" segment.
		nullRow := findRow(ev, bu, "device", SegmentNull)
		if nullRow == nil {
			t.Errorf("%s %s: no %s device row", bu.Name, bu.Version, SegmentNull)
			continue
		}
		checkRow(t, *nullRow, reference(all, func(o obs) bool { return o.device == SegmentNull }, j.Bins))
	}
}

// TestEvaluateErrors: what an evaluation refuses, with the error's class
// and what its message names; none of them publishes anything.
func TestEvaluateErrors(t *testing.T) {
	ctx := context.Background()
	champ := loadDemoBundle(t)
	out := t.TempDir()
	backfillDemo(t, out, champ)
	scoreDemoQueue(t, out, champ)
	db := duck(t)
	demo := demoLabels(t, db)
	ids := sortedIDs(demo)

	// labelsCSV is the demo's labels with edit applied to each row's line.
	labelsCSV := func(edit func(i int, id string, line string) string) string {
		var b strings.Builder
		b.WriteString("ad_id,clicked\n")
		for i, id := range ids {
			b.WriteString(edit(i, id, fmt.Sprintf("%s,%g\n", id, demo[id].label)))
		}
		return b.String()
	}
	labelsDir := func(files map[string]string) *LabelsSource {
		dir := t.TempDir()
		for name, content := range files {
			writeFile(t, dir, "labels/"+name, content)
		}
		return &LabelsSource{Bucket: store.NewFileBucket(dir), Dir: "labels", CSV: readers.CSVOptions{Header: true}}
	}
	bad := ids[len(ids)/2]
	dup := ids[len(ids)/3]

	for _, c := range []struct {
		name string
		job  func() EvaluateJob
		is   error
		says []string
	}{
		{"partition not published", func() EvaluateJob {
			j := evalDemo(out, nil)
			j.Partition = "month=2020-10"
			return j
		}, ErrBadInput, []string{demoTable + "/month=2020-10", "not published"}},
		{"no labelled rows in the table", func() EvaluateJob {
			j := evalDemo(out, nil)
			j.Table, j.Partition, j.IDColumns = queueTable, queueDate, []string{"request_id"}
			return j
		}, ErrBadInput, []string{"no labelled rows", `"clicked"`, queueTable + "/" + queueDate}},
		{"no id of the labels source matches", func() EvaluateJob {
			return evalDemo(out, labelsDir(map[string]string{"l.csv": "ad_id,clicked\nnosuch-1,1\nnosuch-2,0\n"}))
		}, ErrBadInput, []string{"no labelled rows", fmt.Sprintf("%d score rows had no match", len(ids))}},
		{"label 2 in the labels source", func() EvaluateJob {
			return evalDemo(out, labelsDir(map[string]string{"l.csv": labelsCSV(func(_ int, id, line string) string {
				if id == bad {
					return id + ",2\n"
				}
				return line
			})}))
		}, ErrBadInput, []string{`ad_id="` + bad + `"`, "2 is not 0 or 1"}},
		{"an id twice in one labels file", func() EvaluateJob {
			return evalDemo(out, labelsDir(map[string]string{"l.csv": labelsCSV(func(_ int, id, line string) string {
				if id == dup {
					return line + line
				}
				return line
			})}))
		}, ErrBadInput, []string{dup, "more than once"}},
		{"an id in two labels files", func() EvaluateJob {
			return evalDemo(out, labelsDir(map[string]string{
				"a.csv": labelsCSV(func(i int, id, line string) string { return line }),
				"b.csv": "ad_id,clicked\n" + dup + ",1\n",
			}))
		}, ErrBadInput, []string{dup, "more than once"}},
		{"segment column in neither source", func() EvaluateJob {
			return evalDemo(out, demoLabelsSource(), "nosuch")
		}, ErrConfig, []string{`"nosuch"`, "labels source has no such column"}},
		{"segment column without a labels source", func() EvaluateJob {
			return evalDemo(out, nil, "device")
		}, ErrConfig, []string{`"device"`, demoTable + "/" + demoPartition}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Evaluate(ctx, c.job())
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	// A score table that holds a label 2 itself (copied from the dumps).
	t.Run("label 2 in the score table", func(t *testing.T) {
		in, out := t.TempDir(), t.TempDir()
		var b strings.Builder
		rows, err := db.Query(fmt.Sprintf("SELECT * FROM read_csv('%s', header = true, all_varchar = true) ORDER BY ad_id LIMIT 300", demoCSV))
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(cols, ",") + "\n")
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var badID string
		for n := 0; rows.Next(); n++ {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fields := make([]string, len(cols))
			for i, v := range vals {
				fields[i] = v.String
				if cols[i] == "clicked" && n == 100 {
					fields[i], badID = "2", vals[0].String
				}
			}
			b.WriteString(strings.Join(fields, ",") + "\n")
		}
		closeRows(t, rows)
		if cols[0] != "ad_id" || badID == "" {
			t.Fatalf("columns %v, bad id %q", cols, badID)
		}
		writeFile(t, in, "dumps/"+demoMonth+"/x.csv", b.String())
		if _, err := Score(ctx, ScoreJob{
			Job: BackfillJob(demoMonth), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: champ,
			Dir: "dumps/" + demoMonth, Table: demoTable, Partition: demoPartition, Mode: table.Replace,
			IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
			CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
		}); err != nil {
			t.Fatal(err)
		}
		_, err = Evaluate(ctx, evalDemo(out, nil))
		if !errors.Is(err, ErrBadInput) || !strings.Contains(fmt.Sprint(err), `ad_id="`+badID+`"`) || !strings.Contains(fmt.Sprint(err), "2 is not 0 or 1") {
			t.Errorf("err = %v; want bad input naming ad_id %q and the label 2", err, badID)
		}
	})

	// Nothing was published, and no lease was left held: a good
	// evaluation runs now.
	if got, err := ReadEvaluations(ctx, store.NewFileBucket(out), "evaluations"); err != nil || got != nil {
		t.Errorf("after the failed evaluations, ReadEvaluations = %v, %v; want nothing", got, err)
	}
	if _, err := Evaluate(ctx, evalDemo(out, demoLabelsSource(), "device")); err != nil {
		t.Errorf("a good evaluation after the failed ones: %v", err)
	}
}

// TestEvaluateReplaces: a second evaluation of a partition replaces the
// first one's rows, in both tables.
func TestEvaluateReplaces(t *testing.T) {
	ctx := context.Background()
	champ := loadDemoBundle(t)
	out := t.TempDir()
	backfillDemo(t, out, champ, perturbedBundle(t, champ, "p", 3))
	first, err := Evaluate(ctx, evalDemo(out, demoLabelsSource(), "device"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Evaluate(ctx, evalDemo(out, nil)) // no segments this time: fewer rows
	if err != nil {
		t.Fatal(err)
	}
	if first.RunID == second.RunID || len(first.Rows) <= len(second.Rows) {
		t.Fatalf("runs %s (%d rows) and %s (%d rows): want two runs, the first with more rows", first.RunID, len(first.Rows), second.RunID, len(second.Rows))
	}
	// The score table's own clicked column and the dumps as a labels
	// source hold the same labels: the same metrics on all rows.
	for _, r := range second.Rows {
		i := slices.IndexFunc(first.Rows, func(f EvalRow) bool {
			return f.ModelName == r.ModelName && f.ModelVersion == r.ModelVersion && f.SegmentColumn == "" && r.SegmentColumn == ""
		})
		if i < 0 {
			t.Errorf("second run's row %+v is not in the first", r)
			continue
		}
		f := first.Rows[i]
		if r.Scored != f.Scored || r.Rows != f.Rows || r.Positives != f.Positives || r.AUC != f.AUC ||
			r.LogLoss != f.LogLoss || r.Brier != f.Brier || r.ECE != f.ECE || len(r.Bins) != len(f.Bins) {
			t.Errorf("%s %s with the table's labels: %+v\nwith the labels source: %+v", r.ModelName, r.ModelVersion, r.Result, f.Result)
		}
	}
	db := duck(t)
	part := EvalPartition(demoTable, demoPartition)
	for _, c := range []struct {
		table string
		rows  int
	}{{"evaluations", len(second.Rows)}, {CalibrationTable("evaluations"), len(second.Rows) * 10}} {
		// Every Parquet file in the partition's folder, as an analyst would
		// read it, and the files its manifest lists.
		glob := filepath.Join(out, c.table, part, "*.parquet")
		for _, rel := range []string{fmt.Sprintf("read_parquet('%s', hive_partitioning = false)", glob), parquetOf(t, out, c.table, part)} {
			var n, runs int64
			var runID string
			if err := db.QueryRow("SELECT count(*), count(DISTINCT run_id), min(run_id) FROM "+rel).Scan(&n, &runs, &runID); err != nil {
				t.Fatal(err)
			}
			if n != int64(c.rows) || runs != 1 || runID != second.RunID {
				t.Errorf("%s: %d rows of %d runs (%s); want %d rows of run %s only", rel, n, runs, runID, c.rows, second.RunID)
			}
		}
	}
}

// TestReadEvaluations reads back the all-rows rows of every evaluated
// partition: a month of the backfill table and a day of the queue table.
func TestReadEvaluations(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	ob := store.NewFileBucket(out)
	if got, err := ReadEvaluations(ctx, ob, "evaluations"); err != nil || got != nil {
		t.Fatalf("no evaluations table: ReadEvaluations = %v, %v; want nil, nil", got, err)
	}
	champ := loadDemoBundle(t)
	backfillDemo(t, out, champ, perturbedBundle(t, champ, "p", 5))
	scoreDemoQueue(t, out, champ)

	monthAt := time.Date(2020, 10, 1, 0, 0, 0, 0, time.UTC)
	j := evalDemo(out, demoLabelsSource(), "device")
	j.Now = fixedClock(monthAt)
	month, err := Evaluate(ctx, j)
	if err != nil {
		t.Fatal(err)
	}

	// The queue's requests get labels from a file: every third one clicked.
	db := duck(t)
	rows, err := db.Query(fmt.Sprintf("SELECT request_id FROM read_json('%s/queue/*.jsonl') ORDER BY request_id", demoStoreDir))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("request_id,clicked\n")
	for i := 0; rows.Next(); i++ {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s,%d\n", id, min(1, i%3)^1)
	}
	closeRows(t, rows)
	dir := t.TempDir()
	writeFile(t, dir, "clicks/2020-09-02.csv", b.String())
	dayAt := time.Date(2020, 9, 3, 0, 0, 0, 0, time.UTC)
	day, err := Evaluate(ctx, EvaluateJob{
		Output: ob, Table: queueTable, Partition: queueDate, IDColumns: []string{"request_id"}, Label: "clicked",
		Labels:    &LabelsSource{Bucket: store.NewFileBucket(dir), Dir: "clicks", CSV: readers.CSVOptions{Header: true}},
		EvalTable: "evaluations", MaxSegmentValues: 50, Bins: 10, LeaseTTL: time.Minute, Now: fixedClock(dayAt),
	})
	if err != nil {
		t.Fatal(err)
	}

	got, err := ReadEvaluations(ctx, ob, "evaluations")
	if err != nil {
		t.Fatal(err)
	}
	var want []EvalSummary
	for _, e := range []struct {
		ev *Evaluation
		at time.Time
	}{{month, monthAt}, {day, dayAt}} {
		for _, r := range e.ev.Rows {
			if r.SegmentColumn != "" {
				continue
			}
			want = append(want, EvalSummary{
				Table: e.ev.Table, Partition: e.ev.Partition, ModelName: r.ModelName, ModelVersion: r.ModelVersion, Role: r.Role,
				LabelledRows: r.Rows, AUC: r.AUC, LogLoss: r.LogLoss, EvaluatedAt: e.at, RunID: e.ev.RunID,
			})
		}
	}
	if len(want) != 3 {
		t.Fatalf("%d all-rows rows in the evaluations; the test expects 2 models of the month and 1 of the day", len(want))
	}
	key := func(s EvalSummary) string {
		return s.Table + "/" + s.Partition + "/" + s.ModelName + "/" + s.ModelVersion
	}
	slices.SortFunc(got, func(a, b EvalSummary) int { return strings.Compare(key(a), key(b)) })
	slices.SortFunc(want, func(a, b EvalSummary) int { return strings.Compare(key(a), key(b)) })
	if len(got) != len(want) {
		t.Fatalf("ReadEvaluations: %d rows, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		same := g.Table == w.Table && g.Partition == w.Partition && g.ModelName == w.ModelName && g.ModelVersion == w.ModelVersion &&
			g.Role == w.Role && g.LabelledRows == w.LabelledRows && g.AUC == w.AUC && g.LogLoss == w.LogLoss &&
			g.EvaluatedAt.Equal(w.EvaluatedAt) && g.RunID == w.RunID
		if !same {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}
