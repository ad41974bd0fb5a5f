//go:build unix

package report_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/report"
)

// The report is opened by a real browser, headless chromium: the DOM it
// builds, a screenshot, and the layout measured in the page. Without a
// browser on PATH these tests skip, unless SCORER_REQUIRE_BROWSER=1 (CI)
// makes that a failure.

// browser returns the path of a chromium-like browser.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no chromium, chromium-browser or google-chrome on PATH, so the report is not checked in a browser " +
		"(apt-get install chromium; SCORER_REQUIRE_BROWSER=1 turns this skip into a failure)"
	if os.Getenv("SCORER_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runBrowser runs the headless browser with a fresh profile and a
// 1280x2000 window and returns its standard output. It is given a minute:
// the machine may be loaded, and nothing here measures time.
func runBrowser(t *testing.T, path string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args = append([]string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-breakpad",
		"--hide-scrollbars", "--window-size=1280,2000",
		"--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, path, args...)
	// The browser starts helper processes: in a process group of their
	// own, a timeout ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
	}
	if err != nil {
		errs := stderr.String()
		t.Fatalf("%s %s: %v (context: %v)\nstderr:\n%s", path, strings.Join(args, " "), err, ctx.Err(), errs[max(0, len(errs)-4000):])
	}
	return stdout.Bytes()
}

// browserReport is the sample report with names a browser must show as
// text (markup that would run or load something) and a long name that must
// wrap rather than widen the page.
func browserReport() *report.Report {
	r := sampleReport()
	r.ModelName = `<img src=x onerror="document.body.dataset.pwned=1">`
	r.Drift = append(r.Drift,
		report.FeatureDrift{
			Feature: `<script>document.body.dataset.pwned=1</script>`, Kind: "numeric",
			PSI: 0.5, JS: 0.2, PSIPrev: nan, JSPrev: nan, WarnAbove: 0.1, FailAbove: 0.25, Status: "fail",
			History: history(0.3, 0.4, 0.5), MissingRate: 0.02, TrainMissingRate: 0.02, PrevMissingRate: nan,
		},
		report.FeatureDrift{
			Feature: strings.Repeat("user_agent_family_x_device_model_", 6), Kind: "cross",
			PSI: 0.01, JS: 0.002, PSIPrev: 0.01, JSPrev: 0.002, Status: "ok",
			History: history(0.01, 0.01), MissingRate: 0.3, TrainMissingRate: 0.1, PrevMissingRate: 0.1,
		},
	)
	return r
}

func writeReport(t *testing.T, dir string, r *report.Report) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := report.Render(&b, r); err != nil {
		t.Fatalf("Render: %v", err)
	}
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b.Bytes()
}

func TestBrowserDOM(t *testing.T) {
	chromium := browser(t)
	r := browserReport()
	path, doc := writeReport(t, t.TempDir(), r)
	dom := string(runBrowser(t, chromium, "--virtual-time-budget=5000", "--dump-dom", "file://"+path))

	want := driftFeatures(string(doc))
	if len(want) != len(r.Drift) {
		t.Fatalf("the rendered report has %d drift rows, want %d", len(want), len(r.Drift))
	}
	if got := driftFeatures(dom); !slices.Equal(got, want) {
		t.Errorf("drift rows in the browser's DOM:\n%q\nwant\n%q", got, want)
	}
	if got, want := strings.Count(dom, "<svg"), strings.Count(string(doc), "<svg"); got != want {
		t.Errorf("%d svg elements in the DOM, %d in the document", got, want)
	}
	// Markup in names stayed text: no element was made of it, nothing ran.
	for _, bad := range []string{"<script", "<img", "data-pwned"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the browser's DOM contains %q", bad)
		}
	}
	if !strings.Contains(dom, "&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt;") {
		t.Errorf("the hostile feature name is not in the DOM as text")
	}
}

func TestBrowserScreenshot(t *testing.T) {
	chromium := browser(t)
	dir := t.TempDir()
	path, _ := writeReport(t, dir, browserReport())
	shot := filepath.Join(dir, "report.png")
	runBrowser(t, chromium, "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
		"--screenshot="+shot, "file://"+path)
	raw, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("read screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d, want the 1280x2000 window", b.Dx(), b.Dy())
	}
	// The colours the stylesheet gives the charts and badges were painted:
	// the histogram's bars, the training outline, the fail badges.
	for _, c := range []struct {
		name string
		rgb  color.RGBA
		min  int
	}{
		{"histogram bars", color.RGBA{0x3b, 0x6f, 0xb6, 0xff}, 5000},
		{"training outline", color.RGBA{0xe0, 0x7b, 0x00, 0xff}, 300},
		{"fail badge", color.RGBA{0xc6, 0x28, 0x28, 0xff}, 200},
	} {
		if n := countNear(img, c.rgb); n < c.min {
			t.Errorf("%s: %d pixels of their colour, want at least %d", c.name, n, c.min)
		}
	}
	colours, nonWhite := map[color.RGBA]bool{}, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c] = true
			if c.R < 0xf0 || c.G < 0xf0 || c.B < 0xf0 {
				nonWhite++
			}
		}
	}
	if len(colours) < 100 || nonWhite < 20000 {
		t.Errorf("screenshot looks blank: %d distinct colours, %d non-white pixels", len(colours), nonWhite)
	}
}

// countNear counts the pixels within a small distance of c (antialiasing
// blends the edges).
func countNear(img image.Image, c color.RGBA) int {
	near := func(a, b uint8) bool { return max(a, b)-min(a, b) <= 8 }
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if near(p.R, c.R) && near(p.G, c.G) && near(p.B, c.B) {
				n++
			}
		}
	}
	return n
}

// layoutCheck measures the page once it has loaded and writes the verdict
// into <body data-layout>: every chart has a size, no table sticks out of
// the 1280-pixel window, the page does not scroll sideways. It is inserted
// first in <head>, before the report's Content-Security-Policy, which
// governs only what follows it (and forbids scripts).
const layoutCheck = `<script>
addEventListener("load", () => {
  const bad = [];
  const width = document.documentElement.clientWidth;
  document.querySelectorAll("svg").forEach((s, i) => {
    const r = s.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) bad.push("svg " + i + " (" + s.getAttribute("class") + ") is " + r.width + "x" + r.height);
  });
  document.querySelectorAll("table").forEach(tb => {
    const r = tb.getBoundingClientRect();
    if (r.left < 0 || r.right > width) bad.push("table." + tb.className + " spans " + r.left + ".." + r.right + " of " + width);
  });
  if (document.documentElement.scrollWidth > width) bad.push("the page is " + document.documentElement.scrollWidth + " wide, the window " + width);
  document.body.setAttribute("data-layout", bad.length ? bad.join("; ") : "ok");
  document.body.setAttribute("data-svgs", document.querySelectorAll("svg").length);
});
</script>
`

var (
	layoutVerdict = regexp.MustCompile(`data-layout="([^"]*)"`)
	layoutSVGs    = regexp.MustCompile(`data-svgs="(\d+)"`)
)

func TestBrowserLayout(t *testing.T) {
	chromium := browser(t)
	dir := t.TempDir()
	_, doc := writeReport(t, dir, browserReport())
	const head = "<head>\n"
	i := bytes.Index(doc, []byte(head))
	if i < 0 {
		t.Fatalf("the report has no %q to insert the layout check after", head)
	}
	i += len(head)
	checked := slices.Concat(doc[:i], []byte(layoutCheck), doc[i:])
	path := filepath.Join(dir, "layout.html")
	if err := os.WriteFile(path, checked, 0o600); err != nil {
		t.Fatal(err)
	}
	dom := string(runBrowser(t, chromium, "--virtual-time-budget=5000", "--dump-dom", "file://"+path))
	m := layoutVerdict.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the layout check did not run: no data-layout in the DOM")
	}
	if m[1] != "ok" {
		t.Errorf("layout: %s", m[1])
	}
	want := strconv.Itoa(strings.Count(string(doc), "<svg"))
	if n := layoutSVGs.FindStringSubmatch(dom); n == nil || n[1] != want {
		t.Errorf("the layout check measured %q svg elements, the report has %s", n, want)
	}
}
