package readers

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// colType is one of the target types a reader produces.
type colType uint8

const (
	tString colType = iota
	tFloat
	tTimestamp
	tInt
)

func (t colType) String() string {
	switch t {
	case tString:
		return "utf8"
	case tFloat:
		return "float64"
	case tInt:
		return "int64"
	default:
		return "timestamp[us]"
	}
}

// colSpec is one target field.
type colSpec struct {
	name     string
	typ      colType
	nullable bool
	optional bool // in Options.Optional: a file may lack the column
	// ranges are the Options.Ranges of an int64 column: a value outside
	// any of them is bad.
	ranges []IntRange
}

func compileSchema(s *arrow.Schema) ([]colSpec, error) {
	cols := make([]colSpec, s.NumFields())
	seen := make(map[string]bool, len(cols))
	for i, f := range s.Fields() {
		if seen[f.Name] {
			return nil, fmt.Errorf("open readers: %w: field %q appears twice", ErrInvalidOptions, f.Name)
		}
		seen[f.Name] = true
		c := colSpec{name: f.Name, nullable: f.Nullable}
		switch dt := f.Type.(type) {
		case *arrow.StringType:
			c.typ = tString
		case *arrow.Float64Type:
			c.typ = tFloat
		case *arrow.Int64Type:
			c.typ = tInt
		case *arrow.TimestampType:
			if dt.Unit != arrow.Microsecond || (dt.TimeZone != "UTC" && dt.TimeZone != "") {
				return nil, fmt.Errorf("open readers: %w: field %q: type %s, want timestamp[us, tz=UTC]", ErrInvalidOptions, f.Name, f.Type)
			}
			c.typ = tTimestamp
		default:
			return nil, fmt.Errorf("open readers: %w: field %q: type %s is not supported (utf8, float64, int64, timestamp[us, tz=UTC])", ErrInvalidOptions, f.Name, f.Type)
		}
		cols[i] = c
	}
	return cols, nil
}

// value is one converted cell: s for utf8, f for float64, i for int64 and
// for timestamps (microseconds since the Unix epoch).
type value struct {
	null bool
	s    string
	f    float64
	i    int64
}

// Reasons for bad values.
const (
	reasonMissing     = "missing required value"
	reasonNotNumber   = "not a number"
	reasonNotFinite   = "not a finite number"
	reasonNotInteger  = "not an integer"
	reasonIntRange    = "integer out of the int64 range"
	reasonNotTime     = "not a timestamp"
	reasonTimeRange   = "timestamp out of range"
	reasonBadUTF8     = "invalid UTF-8"
	reasonNotString   = "not a string or number"
	reasonMalformedJS = "malformed JSON"
)

// maxValueInError bounds RowError.Value.
const maxValueInError = 120

func shorten(s string) string {
	if len(s) <= maxValueInError {
		return s
	}
	cut := maxValueInError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// nullOrMissing is the value for a null cell of c, or a reason when c
// rejects nulls.
func nullOrMissing(c *colSpec) (value, string) {
	if !c.nullable {
		return value{}, reasonMissing
	}
	return value{null: true}, ""
}

// fromText converts a text cell (CSV field, JSON string, Parquet byte
// array) that is not null.
func fromText(c *colSpec, s string) (value, string) {
	if s == "" && !c.nullable {
		return value{}, reasonMissing
	}
	switch c.typ {
	case tString:
		if !utf8.ValidString(s) {
			return value{}, reasonBadUTF8
		}
		return value{s: s}, ""
	case tFloat:
		f, reason := parseFloat(s)
		return value{f: f}, reason
	case tInt:
		n, reason := c.intValue(parseInt(s))
		return value{i: n}, reason
	default:
		us, reason := parseTimestamp(s)
		return value{i: us}, reason
	}
}

// fromNumber converts a JSON number given as its literal text.
func fromNumber(c *colSpec, lit string) (value, string) {
	switch c.typ {
	case tString:
		return value{s: lit}, ""
	case tFloat:
		f, reason := parseFloat(lit)
		return value{f: f}, reason
	case tInt:
		n, reason := c.intValue(parseInt(lit))
		return value{i: n}, reason
	default:
		us, reason := secondsText(lit)
		return value{i: us}, reason
	}
}

// intValue is an int64 cell converted with reason (as parseInt gives
// them), checked against the column's ranges: n, and the reason it is bad
// ("" if it is not). It returns an int64, not a value, for the CSV
// decoder's loop, as parseFloat does.
func (c *colSpec) intValue(n int64, reason string) (int64, string) {
	if reason == "" {
		reason = c.outOfRange(n)
	}
	return n, reason
}

// outOfRange is the reason an int64 value of c is bad, "" if it lies in
// every one of c's ranges.
func (c *colSpec) outOfRange(n int64) string {
	for _, r := range c.ranges {
		if n < r.Min || n >= r.Max {
			return fmt.Sprintf("%s %d out of range [%d, %d)", cmp.Or(r.Name, "value"), n, r.Min, r.Max)
		}
	}
	return ""
}

// parseInt reads a decimal integer ("12", "-3", " 7 "; surrounding spaces
// ignored), or a number written otherwise whose value is an integer
// ("12.0", "1e3", as tools that keep integer columns with missing values
// as floats write them). "12.5" and "abc" are not integers.
func parseInt(s string) (int64, string) {
	if f, ok := parseSmallInt(s); ok {
		return int64(f), ""
	}
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, reasonIntRange
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, reasonIntRange
	case err != nil:
		return 0, reasonNotInteger
	}
	return floatInt(f)
}

// floatInt converts a float that must hold an integer.
func floatInt(f float64) (int64, string) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
		return 0, reasonNotInteger
	case f >= math.MaxInt64 || f < math.MinInt64:
		return 0, reasonIntRange
	}
	return int64(f), ""
}

// parseFloat reads a finite number. It returns a float64 rather than a
// value: the CSV decoder's loop then takes it from a register, where a
// value came back through memory and its read waited on the stores just
// made (a failed store forwarding, 8% of decoding a Criteo-like row).
func parseFloat(s string) (float64, string) {
	if f, ok := parseSmallInt(s); ok {
		return f, ""
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, reasonNotFinite
		}
		return 0, reasonNotNumber
	}
	return finite(f)
}

// parseSmallInt reads an optional sign and 1 to 15 decimal digits, the
// common case of count features, exactly as strconv.ParseFloat would (a
// 15-digit integer is exact in a float64); ok is false for anything else.
func parseSmallInt(s string) (f float64, ok bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	if len(s) == i || len(s)-i > 15 {
		return 0, false
	}
	var n int64
	for ; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	f = float64(n)
	if neg {
		f = -f
	}
	return f, true
}

func floatValue(f float64) (value, string) {
	f, reason := finite(f)
	return value{f: f}, reason
}

// finite is f, or the reason it is bad: NaN or infinite.
func finite(f float64) (float64, string) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, reasonNotFinite
	}
	return f, ""
}

// timeLayouts are tried in order for text timestamps. Layouts without a
// zone are read as UTC. time.Parse also accepts fractional seconds after
// the seconds field.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
}

// parseTimestamp reads RFC 3339, "2006-01-02 15:04:05" or
// "2006-01-02T15:04:05" (UTC), or a plain number of Unix seconds, into
// microseconds since the epoch.
func parseTimestamp(s string) (int64, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, reasonNotTime
	}
	if looksNumeric(s) { // no layout matches these
		return secondsText(s)
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMicro(), ""
		}
	}
	return 0, reasonNotTime
}

// looksNumeric reports whether s has only the characters of a decimal
// number, so that "2020-09-02" is not taken for an arithmetic attempt.
func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E':
		case (c == '-' || c == '+') && (i == 0 || s[i-1] == 'e' || s[i-1] == 'E'):
		default:
			return false
		}
	}
	return true
}

// maxSeconds keeps seconds*1e6 inside int64.
const maxSeconds = math.MaxInt64 / 1_000_000

// secondsText converts Unix seconds written as a decimal number.
func secondsText(s string) (int64, string) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return secondsToMicros(n)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, reasonNotTime
	}
	return floatSecondsToMicros(f)
}

func secondsToMicros(n int64) (int64, string) {
	if n > maxSeconds || n < -maxSeconds {
		return 0, reasonTimeRange
	}
	return n * 1_000_000, ""
}

func floatSecondsToMicros(f float64) (int64, string) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, reasonNotTime
	}
	if f > maxSeconds || f < -maxSeconds {
		return 0, reasonTimeRange
	}
	return int64(math.Round(f * 1e6)), ""
}
