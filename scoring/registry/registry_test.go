package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
	"github.com/adtech/scorer/scoring/registry"
)

func TestMain(m *testing.M) {
	// fake-gcs-server links OpenCensus (through Pub/Sub), whose init starts
	// a worker that lives for the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// backends are the stores every registry test runs on.
var backends = []struct {
	name string
	open func(t *testing.T) store.Bucket
}{
	{"file", openFile},
	{"gcs", openGCS},
}

func openFile(t *testing.T) store.Bucket {
	t.Helper()
	b, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openGCS is a bucket on an in-process fake GCS (fake-gcs-server, memory
// backend), under a prefix.
func openGCS(t *testing.T) store.Bucket {
	t.Helper()
	b, _ := storetest.FakeGCS(t, "reg", "ml/")
	return b
}

// registryTests run on every backend.
var registryTests = []struct {
	name string
	run  func(t *testing.T, b store.Bucket)
}{
	{"AddLoadPromote", testAddLoadPromote},
	{"RealBundleRoundTrip", testRealBundle},
	{"Layout", testLayout},
	{"AddIsIdempotentAndVersionsImmutable", testAddImmutable},
	{"ConcurrentAddsOfOtherWeights", func(t *testing.T, b store.Bucket) { testConcurrentAdds(t, b, false) }},
	{"ConcurrentAddsOfOtherModelYAML", func(t *testing.T, b store.Bucket) { testConcurrentAdds(t, b, true) }},
	{"CrashMidAdd", testCrashMidAdd},
	{"PromoteUnknownVersion", testPromoteUnknown},
	{"PromotePromoteRollback", testPromoteRollback},
	{"RollbackWithNothingToRollBackTo", testRollbackNothing},
	{"PromoteCurrentIsNoop", testPromoteCurrent},
	{"ConcurrentPromotes", testConcurrentPromotes},
	{"ConcurrentPromotesStress", testPromoteStress},
	{"CrashBetweenAliasAndEvent", testCrashMidPromote},
	{"CrashInFirstPromote", testCrashFirstPromote},
	{"VersionsAndModels", testVersionsModels},
	{"NotFoundErrors", testNotFound},
	{"InvalidNames", testInvalidNames},
	{"NewerFormatRefused", testNewerFormat},
}

func TestRegistry(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tt := range registryTests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, be.open(t)) })
			}
		})
	}
}

// newBundle is a small valid bundle of model "ctr"; the seed picks its
// weights.
func newBundle(version string, seed uint64) *bundle.Bundle {
	bu := modeltest.RandomBundle(bundle.Wide, 3, []int{2, 5, 7}, 4, nil, seed)
	bu.Name, bu.Version = "ctr", version
	bu.Metrics = map[string]float64{"auc": 0.7}
	return bu
}

func mustAdd(t *testing.T, r *registry.Registry, bus ...*bundle.Bundle) {
	t.Helper()
	for _, bu := range bus {
		if err := r.Add(t.Context(), bu); err != nil {
			t.Fatal(err)
		}
	}
}

func mustPromote(t *testing.T, r *registry.Registry, version string, ev registry.Event) *registry.Alias {
	t.Helper()
	a, err := r.Promote(t.Context(), "ctr", version, ev)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustLoad(t *testing.T, r *registry.Registry, ref string) *bundle.Bundle {
	t.Helper()
	parsed, ok, err := registry.ParseRef(ref)
	if err != nil || !ok {
		t.Fatalf("ParseRef(%q) = %v, %v", ref, ok, err)
	}
	bu, err := r.Load(t.Context(), parsed)
	if err != nil {
		t.Fatal(err)
	}
	return bu
}

func mustEvents(t *testing.T, r *registry.Registry) []registry.Event {
	t.Helper()
	evs, err := r.Events(t.Context(), "ctr")
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func wantErr(t *testing.T, err, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func sameBundle(t *testing.T, got, want *bundle.Bundle) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %s/%s differs from the bundle added as %s/%s", got.Name, got.Version, want.Name, want.Version)
	}
}

// chain checks that events are numbered 1..n and each starts where the one
// before ended, and that the alias is where the last one ended.
func chain(t *testing.T, r *registry.Registry, evs []registry.Event) {
	t.Helper()
	prev := ""
	for i, e := range evs {
		if e.Seq != i+1 || e.From != prev || e.Name != "ctr" || e.Format != registry.FormatVersion {
			t.Errorf("event %d = %+v, want seq %d from %q", i, e, i+1, prev)
		}
		prev = e.To
	}
	a, err := r.Current(t.Context(), "ctr")
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || a.Version != prev || a.Event != len(evs) {
		t.Errorf("alias %+v, want version %q at event %d", a, prev, len(evs))
	}
}

func testAddLoadPromote(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	v1, v2 := newBundle("1", 1), newBundle("2", 2)
	mustAdd(t, r, v1, v2)
	sameBundle(t, mustLoad(t, r, "models:/ctr/1"), v1)
	sameBundle(t, mustLoad(t, r, "models:/ctr/2"), v2)

	_, err := r.Load(t.Context(), registry.Ref{Name: "ctr", Alias: true})
	wantErr(t, err, registry.ErrNotFound, `model "ctr" has no current version`, "promote one with `scorer models promote`")

	a := mustPromote(t, r, "1", registry.Event{By: "alice", Reason: "first"})
	if a.Version != "1" || a.Previous != "" || a.Event != 1 || a.By != "alice" || a.Action != registry.ActionPromote {
		t.Errorf("alias %+v", a)
	}
	sameBundle(t, mustLoad(t, r, "models:/ctr@current"), v1)
	mustPromote(t, r, "2", registry.Event{By: "alice"})
	sameBundle(t, mustLoad(t, r, "models:/ctr@current"), v2)

	// A second registry on the same store sees the same.
	sameBundle(t, mustLoad(t, registry.New(b), "models:/ctr@current"), v2)
}

// testRealBundle adds the demo model (features, statistics, metrics,
// training information) and loads it back, by version and by alias.
func testRealBundle(t *testing.T, b store.Bucket) {
	demo, err := bundle.Load(t.Context(), openFileAt(t, "../../testdata/models"), "ctr-demo")
	if err != nil {
		t.Fatal(err)
	}
	r := registry.New(b)
	mustAdd(t, r, demo, demo) // the second is a no-op: the encoding is stable
	if _, err := r.Promote(t.Context(), demo.Name, demo.Version, registry.Event{By: "test"}); err != nil {
		t.Fatal(err)
	}
	sameBundle(t, mustLoad(t, r, registry.Ref{Name: demo.Name, Version: demo.Version}.String()), demo)
	sameBundle(t, mustLoad(t, r, "models:/"+demo.Name+"@current"), demo)
}

func openFileAt(t *testing.T, dir string) store.Bucket {
	t.Helper()
	b, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testLayout pins the keys and the alias and event records: they are an
// on-store format.
func testLayout(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	at := time.Date(2020, 9, 1, 3, 0, 0, 0, time.UTC)
	mustPromote(t, r, "1", registry.Event{By: "alice", Reason: "r", At: at, Evidence: json.RawMessage(`{"auc": 0.75}`)})
	objs, err := b.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{"models/ctr/1/model.yaml", "models/ctr/1/profile.json", "models/ctr/1/reference.json", "models/ctr/1/weights.safetensors", "models/ctr/current.json", "models/ctr/events/000001.json"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if registry.AliasKey("ctr") != want[4] || registry.EventKey("ctr", 1) != want[5] {
		t.Errorf("key helpers disagree with the listing")
	}
	alias, err := store.ReadAll(t.Context(), b, "models/ctr/current.json")
	if err != nil {
		t.Fatal(err)
	}
	wantAlias := `{
  "format_version": 1,
  "name": "ctr",
  "version": "1",
  "previous": "",
  "updated_at": "2020-09-01T03:00:00Z",
  "by": "alice",
  "reason": "r",
  "event": 1,
  "action": "promote",
  "forced": false,
  "evidence": {
    "auc": 0.75
  }
}`
	if string(alias) != wantAlias {
		t.Errorf("current.json:\n%s\nwant\n%s", alias, wantAlias)
	}
	event, err := store.ReadAll(t.Context(), b, "models/ctr/events/000001.json")
	if err != nil {
		t.Fatal(err)
	}
	wantEvent := `{
  "format_version": 1,
  "seq": 1,
  "action": "promote",
  "name": "ctr",
  "from": "",
  "to": "1",
  "at": "2020-09-01T03:00:00Z",
  "by": "alice",
  "reason": "r",
  "forced": false,
  "evidence": {
    "auc": 0.75
  }
}`
	if string(event) != wantEvent {
		t.Errorf("events/000001.json:\n%s\nwant\n%s", event, wantEvent)
	}
}

func testAddImmutable(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	v1 := newBundle("1", 1)
	mustAdd(t, r, v1, v1, newBundle("1", 1)) // an equal bundle, built again

	err := r.Add(t.Context(), newBundle("1", 2))
	wantErr(t, err, registry.ErrVersionExists, `version "1" of model "ctr"`, "immutable")

	sameWeights := newBundle("1", 1)
	sameWeights.Metrics["auc"] = 0.9
	err = r.Add(t.Context(), sameWeights)
	wantErr(t, err, registry.ErrVersionExists, "model.yaml")

	sameBundle(t, mustLoad(t, r, "models:/ctr/1"), v1)
}

// gate holds the writers of keys ending in suffix until n of them have
// arrived, so that n concurrent calls have all read what they read before
// any writes: a race is then certain, not up to the scheduler.
type gate struct {
	store.Bucket
	suffix string
	n      int

	mu      sync.Mutex
	arrived int
	open    chan struct{}
}

func newGate(b store.Bucket, suffix string, n int) *gate {
	return &gate{Bucket: b, suffix: suffix, n: n, open: make(chan struct{})}
}

func (g *gate) NewWriter(ctx context.Context, key string, opts store.WriteOptions) (store.Writer, error) {
	if strings.HasSuffix(key, g.suffix) {
		g.mu.Lock()
		g.arrived++
		if g.arrived == g.n {
			close(g.open)
		}
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-time.After(20 * time.Second):
			return nil, errors.New("gate: the other writers never came")
		}
	}
	return g.Bucket.NewWriter(ctx, key, opts)
}

// testConcurrentAdds races Adds of one version with different content:
// other weights (decided by the weights), or the same weights and another
// model.yaml (decided by model.yaml).
func testConcurrentAdds(t *testing.T, b store.Bucket, sameWeights bool) {
	const n = 4
	bus := make([]*bundle.Bundle, n)
	suffix := bundle.WeightsFile
	for i := range bus {
		if sameWeights {
			bus[i] = newBundle("1", 1)
			bus[i].Metrics["auc"] = 0.5 + float64(i)/10
			suffix = bundle.ModelFile
		} else {
			bus[i] = newBundle("1", uint64(i+1))
		}
	}
	r := registry.New(newGate(b, suffix, n))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range bus {
		wg.Go(func() { errs[i] = r.Add(t.Context(), bus[i]) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Adds %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, registry.ErrVersionExists):
			t.Fatalf("Add %d: %v, want ErrVersionExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no Add succeeded: %v", errs)
	}
	sameBundle(t, mustLoad(t, registry.New(b), "models:/ctr/1"), bus[winner])
	// The winner's Add, repeated, is still a success; the others' are not.
	for i, bu := range bus {
		if err := registry.New(b).Add(t.Context(), bu); (err == nil) != (i == winner) {
			t.Errorf("Add %d again: %v", i, err)
		}
	}
}

func testCrashMidAdd(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	v1 := newBundle("1", 1)
	if err := registry.AddStopAfterWeights(t.Context(), r, v1); err != nil {
		t.Fatal(err)
	}
	_, err := r.Load(t.Context(), registry.Ref{Name: "ctr", Version: "1"})
	wantErr(t, err, registry.ErrNotFound, `model "ctr" has no version "1"`)
	_, err = r.Versions(t.Context(), "ctr")
	wantErr(t, err, registry.ErrNotFound)
	if models, err := r.Models(t.Context()); err != nil || len(models) != 0 {
		t.Errorf("Models = %q, %v; want none", models, err)
	}
	_, err = r.Promote(t.Context(), "ctr", "1", registry.Event{})
	wantErr(t, err, registry.ErrNotFound)
	// Another bundle may not take the version; the same one finishes it.
	err = r.Add(t.Context(), newBundle("1", 2))
	wantErr(t, err, registry.ErrVersionExists, "stopped half-way")
	mustAdd(t, r, v1)
	sameBundle(t, mustLoad(t, r, "models:/ctr/1"), v1)
}

func testPromoteUnknown(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	_, err := r.Promote(t.Context(), "ctr", "9", registry.Event{})
	wantErr(t, err, registry.ErrNotFound, `model "ctr" has no version "9"`)
	_, err = r.Promote(t.Context(), "nope", "1", registry.Event{})
	wantErr(t, err, registry.ErrNotFound, `model "nope" has no version "1"`)
	if a, err := r.Current(t.Context(), "ctr"); a != nil || err != nil {
		t.Errorf("Current = %+v, %v; want nil, nil", a, err)
	}
	if evs := mustEvents(t, r); len(evs) != 0 {
		t.Errorf("events %+v, want none", evs)
	}
}

func testPromoteRollback(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	v1, v2 := newBundle("1", 1), newBundle("2", 2)
	mustAdd(t, r, v1, v2)
	t0 := time.Date(2020, 9, 1, 3, 0, 0, 0, time.UTC)
	evidence := json.RawMessage(`{"champion":{"auc":0.70},"challenger":{"auc":0.68}}`)
	mustPromote(t, r, "1", registry.Event{By: "alice", Reason: "first model", At: t0})
	mustPromote(t, r, "2", registry.Event{By: "bob", Reason: "retrained", At: t0.Add(time.Hour), Forced: true, Evidence: evidence})
	a, err := r.Rollback(t.Context(), "ctr", registry.Event{By: "carol", Reason: "ctr dropped"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "1" || a.Previous != "2" || a.Event != 3 || a.Action != registry.ActionRollback || a.By != "carol" {
		t.Errorf("alias after rollback %+v", a)
	}
	sameBundle(t, mustLoad(t, r, "models:/ctr@current"), v1)

	evs := mustEvents(t, r)
	type summary struct {
		Seq                          int
		Action, From, To, By, Reason string
		Forced                       bool
	}
	var got []summary
	for _, e := range evs {
		got = append(got, summary{e.Seq, e.Action, e.From, e.To, e.By, e.Reason, e.Forced})
	}
	want := []summary{
		{1, "promote", "", "1", "alice", "first model", false},
		{2, "promote", "1", "2", "bob", "retrained", true},
		{3, "rollback", "2", "1", "carol", "ctr dropped", false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n%+v\nwant\n%+v", got, want)
	}
	if !evs[0].At.Equal(t0) || !evs[1].At.Equal(t0.Add(time.Hour)) || evs[2].At.IsZero() {
		t.Errorf("event times %v, %v, %v", evs[0].At, evs[1].At, evs[2].At)
	}
	var gotEv, wantEv any
	if err := json.Unmarshal(evs[1].Evidence, &gotEv); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(evidence, &wantEv)
	if !reflect.DeepEqual(gotEv, wantEv) || evs[0].Evidence != nil {
		t.Errorf("evidence %s, %s; want none, %s", evs[0].Evidence, evs[1].Evidence, evidence)
	}
	chain(t, r, evs)

	// Rolling back a rollback returns to the version rolled back from.
	a, err = r.Rollback(t.Context(), "ctr", registry.Event{By: "carol", Reason: "false alarm"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "2" || a.Previous != "1" {
		t.Errorf("alias after a second rollback %+v", a)
	}
	chain(t, r, mustEvents(t, r))
}

func testRollbackNothing(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	_, err := r.Rollback(t.Context(), "ctr", registry.Event{})
	wantErr(t, err, registry.ErrNoPrevious, `model "ctr" has no current version`)
	mustPromote(t, r, "1", registry.Event{})
	_, err = r.Rollback(t.Context(), "ctr", registry.Event{})
	wantErr(t, err, registry.ErrNoPrevious, "nothing to roll back to", `only one current version, "1"`)
	if evs := mustEvents(t, r); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}

func testPromoteCurrent(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	first := mustPromote(t, r, "1", registry.Event{By: "alice"})
	again := mustPromote(t, r, "1", registry.Event{By: "bob"})
	if !reflect.DeepEqual(first, again) {
		t.Errorf("promoting the current version changed the alias: %+v, then %+v", first, again)
	}
	if evs := mustEvents(t, r); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}

// testConcurrentPromotes has two promoters read the alias before either
// swaps it: exactly one wins, the other gets ErrConflict naming both
// versions, and the alias and the log show the winner's change only.
func testConcurrentPromotes(t *testing.T, b store.Bucket) {
	setup := registry.New(b)
	mustAdd(t, setup, newBundle("1", 1), newBundle("2", 2), newBundle("3", 3))
	mustPromote(t, setup, "1", registry.Event{})

	r := registry.New(newGate(b, "current.json", 2))
	versions := []string{"2", "3"}
	errs := make([]error, len(versions))
	var wg sync.WaitGroup
	for i, v := range versions {
		wg.Go(func() { _, errs[i] = r.Promote(t.Context(), "ctr", v, registry.Event{By: "p" + v}) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want exactly one success: %v, %v", errs[0], errs[1])
	}
	winner, loser := 0, 1
	if errs[0] != nil {
		winner, loser = 1, 0
	}
	wantErr(t, errs[loser], registry.ErrConflict,
		fmt.Sprintf(`current changed while promoting: was "1", now %q; retry`, versions[winner]))
	evs := mustEvents(t, setup)
	if len(evs) != 2 || evs[1].To != versions[winner] || evs[1].By != "p"+versions[winner] {
		t.Errorf("events %+v, want the winner's promotion to %s second", evs, versions[winner])
	}
	chain(t, setup, evs)
}

// testPromoteStress lets promoters and rollbacks race freely: each
// succeeds or fails with ErrConflict, and the log holds exactly the
// successes, in a chain that ends at the alias.
func testPromoteStress(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	const n = 6
	for i := 1; i <= n; i++ {
		mustAdd(t, r, newBundle(fmt.Sprint(i), uint64(i)))
	}
	mustPromote(t, r, "1", registry.Event{})
	mustPromote(t, r, "2", registry.Event{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i == 0 {
				_, errs[i] = r.Rollback(t.Context(), "ctr", registry.Event{})
				return
			}
			_, errs[i] = r.Promote(t.Context(), "ctr", fmt.Sprint(i+1), registry.Event{})
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, registry.ErrConflict):
			t.Errorf("call %d: %v, want success or ErrConflict", i, err)
		}
	}
	evs := mustEvents(t, r)
	// Promoting "2" while it is current is a success without an event.
	noop := 0
	if errs[1] == nil && !hasEvent(evs[2:], "2") {
		noop = 1
	}
	if len(evs) != 2+ok-noop {
		t.Errorf("%d events after %d successes (%d without change), want %d", len(evs), ok, noop, 2+ok-noop)
	}
	chain(t, r, evs)
}

func hasEvent(evs []registry.Event, to string) bool {
	for _, e := range evs {
		if e.To == to && e.Action == registry.ActionPromote {
			return true
		}
	}
	return false
}

// testCrashMidPromote stops a Promote after its alias swap: the change has
// taken effect, Events reports it, and the next Promote writes its record.
func testCrashMidPromote(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1), newBundle("2", 2), newBundle("3", 3))
	mustPromote(t, r, "1", registry.Event{By: "alice"})
	at := time.Date(2020, 9, 2, 0, 0, 0, 0, time.UTC)
	ev := registry.Event{By: "bob", Reason: "crash", At: at, Forced: true, Evidence: json.RawMessage(`{"auc":0.8}`)}
	if _, err := registry.PromoteStopBeforeEvent(t.Context(), r, "ctr", "2", ev); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), registry.EventKey("ctr", 2)); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("event 2 is written (%v); the crash should have left it out", err)
	}
	a, err := r.Current(t.Context(), "ctr")
	if err != nil || a.Version != "2" || a.Event != 2 {
		t.Fatalf("Current = %+v, %v; want version 2 at event 2", a, err)
	}
	reported := mustEvents(t, r)
	if len(reported) != 2 {
		t.Fatalf("%d events, want 2", len(reported))
	}
	e := reported[1]
	if e.From != "1" || e.To != "2" || e.By != "bob" || e.Reason != "crash" || !e.Forced || !e.At.Equal(at) || e.Action != registry.ActionPromote {
		t.Errorf("reported event %+v", e)
	}
	chain(t, r, reported)

	mustPromote(t, r, "3", registry.Event{By: "carol"})
	if _, err := b.Stat(t.Context(), registry.EventKey("ctr", 2)); err != nil {
		t.Fatalf("event 2 not written by the next promote: %v", err)
	}
	evs := mustEvents(t, r)
	if len(evs) != 3 || !reflect.DeepEqual(stripEvidence(evs[1]), stripEvidence(e)) || !jsonEqual(evs[1].Evidence, e.Evidence) {
		t.Errorf("events %+v; want the reported event 2 as written", evs)
	}
	chain(t, r, evs)
	a, err = r.Rollback(t.Context(), "ctr", registry.Event{})
	if err != nil || a.Version != "2" {
		t.Errorf("Rollback = %+v, %v; want version 2", a, err)
	}
}

// testCrashFirstPromote stops the first Promote after its alias swap.
func testCrashFirstPromote(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1), newBundle("2", 2))
	if _, err := registry.PromoteStopBeforeEvent(t.Context(), r, "ctr", "1", registry.Event{By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if evs := mustEvents(t, r); len(evs) != 1 || evs[0].To != "1" || evs[0].By != "alice" {
		t.Errorf("events %+v, want the first promotion", evs)
	}
	mustPromote(t, r, "2", registry.Event{})
	if _, err := b.Stat(t.Context(), registry.EventKey("ctr", 1)); err != nil {
		t.Fatalf("event 1 not written by the next promote: %v", err)
	}
	chain(t, r, mustEvents(t, r))
}

func stripEvidence(e registry.Event) registry.Event {
	e.Evidence = nil
	return e
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func testVersionsModels(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	other := newBundle("7", 7)
	other.Name = "other"
	mustAdd(t, r, newBundle("1", 1), newBundle("2", 2), other)
	mustPromote(t, r, "2", registry.Event{})
	models, err := r.Models(t.Context())
	if err != nil || !reflect.DeepEqual(models, []string{"ctr", "other"}) {
		t.Errorf("Models = %q, %v", models, err)
	}
	vs, err := r.Versions(t.Context(), "ctr")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Version != "1" || vs[0].Current || vs[1].Version != "2" || !vs[1].Current {
		t.Errorf("Versions = %+v", vs)
	}
	for _, v := range vs {
		if v.AddedAt.IsZero() || time.Since(v.AddedAt) > time.Hour {
			t.Errorf("version %s added at %v", v.Version, v.AddedAt)
		}
	}
	if vs[1].AddedAt.Before(vs[0].AddedAt) {
		t.Errorf("versions not sorted by time added: %+v", vs)
	}
	vs, err = r.Versions(t.Context(), "other")
	if err != nil || len(vs) != 1 || vs[0].Current {
		t.Errorf("Versions(other) = %+v, %v", vs, err)
	}
}

func testNotFound(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	for _, tt := range []struct {
		ref  registry.Ref
		says []string
	}{
		{registry.Ref{Name: "ctr", Version: "9"}, []string{`model "ctr" has no version "9"`}},
		{registry.Ref{Name: "nope", Version: "1"}, []string{`model "nope" has no version "1"`}},
		{registry.Ref{Name: "nope", Alias: true}, []string{`no model "nope"`}},
		{registry.Ref{Name: "ctr", Alias: true}, []string{"promote one with `scorer models promote`"}},
	} {
		_, err := r.Load(t.Context(), tt.ref)
		wantErr(t, err, registry.ErrNotFound, append(tt.says, tt.ref.String())...)
	}
	_, err := r.Versions(t.Context(), "nope")
	wantErr(t, err, registry.ErrNotFound, `no model "nope"`)
	if evs, err := r.Events(t.Context(), "nope"); err != nil || len(evs) != 0 {
		t.Errorf("Events(nope) = %+v, %v; want none", evs, err)
	}
}

func testInvalidNames(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	for _, name := range []string{"../x", "a/b", "", ".hidden", "a b"} {
		bu := newBundle("1", 1)
		bu.Name = name
		wantErr(t, r.Add(t.Context(), bu), registry.ErrInvalidRef)
		_, err := r.Versions(t.Context(), name)
		wantErr(t, err, registry.ErrInvalidRef)
		_, err = r.Current(t.Context(), name)
		wantErr(t, err, registry.ErrInvalidRef)
		_, err = r.Events(t.Context(), name)
		wantErr(t, err, registry.ErrInvalidRef)
		_, err = r.Load(t.Context(), registry.Ref{Name: name, Alias: true})
		wantErr(t, err, registry.ErrInvalidRef)
		_, err = r.Rollback(t.Context(), name, registry.Event{})
		wantErr(t, err, registry.ErrInvalidRef)
	}
	for _, version := range []string{"..", "1/2", "events", "current.json"} {
		bu := newBundle(version, 1)
		wantErr(t, r.Add(t.Context(), bu), registry.ErrInvalidRef)
		_, err := r.Promote(t.Context(), "ctr", version, registry.Event{})
		wantErr(t, err, registry.ErrInvalidRef)
		_, err = r.Load(t.Context(), registry.Ref{Name: "ctr", Version: version})
		wantErr(t, err, registry.ErrInvalidRef)
	}
	mustAdd(t, r, newBundle("1", 1))
	_, err := r.Promote(t.Context(), "ctr", "1", registry.Event{Evidence: json.RawMessage(`{`)})
	if err == nil || !strings.Contains(err.Error(), "evidence is not valid JSON") {
		t.Errorf("promote with bad evidence: %v", err)
	}
	if objs, err := b.List(t.Context(), ""); err != nil || len(objs) != 4 {
		t.Errorf("the store holds %d objects (%v), want the one version's 4", len(objs), err)
	}
}

// testNewerFormat: an alias written by a newer build is refused, not
// misread or overwritten.
func testNewerFormat(t *testing.T, b store.Bucket) {
	r := registry.New(b)
	mustAdd(t, r, newBundle("1", 1))
	data := []byte(`{"format_version": 2, "name": "ctr", "version": "1", "event": 1}`)
	if err := store.WriteAll(t.Context(), b, registry.AliasKey("ctr"), data, store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Current(t.Context(), "ctr")
	wantErr(t, err, state.ErrNewerFormat)
	_, err = r.Promote(t.Context(), "ctr", "1", registry.Event{})
	wantErr(t, err, state.ErrNewerFormat)
}
