package registry

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme starts every model reference: "models:/<name>@current" or
// "models:/<name>/<version>".
const Scheme = "models:/"

// CurrentAlias is the one alias a reference may name.
const CurrentAlias = "current"

// maxSegment bounds a name or a version, far below the key limits of the
// stores (1024 bytes on GCS, 255 per path element on most file systems).
const maxSegment = 128

// Ref is a parsed model reference: "models:/<name>@current" (Alias: the
// version current.json names when the reference is resolved) or
// "models:/<name>/<version>" (one fixed version), MLflow's URI style.
type Ref struct {
	Name, Version string
	Alias         bool
}

// ParseRef parses a model reference. ok is false, with no error, when s does
// not start with "models:/": it is then a plain bundle URI, for the caller
// to open as such. A malformed models:/ reference is an error wrapping
// ErrInvalidRef that says why.
func ParseRef(s string) (Ref, bool, error) {
	rest, found := strings.CutPrefix(s, Scheme)
	if !found {
		return Ref{}, false, nil
	}
	fail := func(format string, args ...any) (Ref, bool, error) {
		return Ref{}, true, fmt.Errorf("model reference %q: %w: %s", s, ErrInvalidRef, fmt.Sprintf(format, args...))
	}
	var ref Ref
	if name, version, ok := strings.Cut(rest, "/"); ok {
		ref = Ref{Name: name, Version: version}
	} else if name, alias, ok := strings.Cut(rest, "@"); ok {
		if alias != CurrentAlias {
			return fail("alias %q: only @%s alias is supported", alias, CurrentAlias)
		}
		ref = Ref{Name: name, Alias: true}
	} else {
		return fail("want %s<name>@%s or %s<name>/<version>", Scheme, CurrentAlias, Scheme)
	}
	if err := checkName(ref.Name); err != nil {
		return fail("%v", err)
	}
	if !ref.Alias {
		if err := checkVersion(ref.Version); err != nil {
			return fail("%v", err)
		}
	}
	return ref, true, nil
}

// String is the reference in the syntax ParseRef reads.
func (r Ref) String() string {
	if r.Alias {
		return Scheme + r.Name + "@" + CurrentAlias
	}
	return Scheme + r.Name + "/" + r.Version
}

// checkName checks a model name: one safe key segment.
func checkName(name string) error {
	if err := checkSegment(name); err != nil {
		return fmt.Errorf("model name %w", err)
	}
	return nil
}

// checkVersion checks a version: one safe key segment that is not the name
// of another object in a model's folder (current.json, events/).
func checkVersion(version string) error {
	if err := checkSegment(version); err != nil {
		return fmt.Errorf("version %w", err)
	}
	if version == aliasName || version == eventsDir {
		return fmt.Errorf("version %q is reserved (the registry keeps %s and %s/ beside the versions)", version, aliasName, eventsDir)
	}
	return nil
}

// checkSegment checks that s can be one element of a key on every store:
// 1 to maxSegment ASCII letters, digits, '.', '_' or '-', not starting with
// '.' (which also rules out "." and ".."). No '/', no control character, no
// space.
func checkSegment(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxSegment:
		return fmt.Errorf("%.20q... is longer than %d bytes", s, maxSegment)
	case s[0] == '.':
		return fmt.Errorf("%q starts with '.'", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%q holds %q: use only letters, digits, '.', '_' and '-'", s, s[i:i+1])
	}
	return nil
}
