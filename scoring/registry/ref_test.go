package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/adtech/scorer/scoring/registry"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want registry.Ref
		ok   bool
		err  string // part of the error; "" for none
	}{
		{"models:/ctr@current", registry.Ref{Name: "ctr", Alias: true}, true, ""},
		{"models:/ctr/2020-09.1", registry.Ref{Name: "ctr", Version: "2020-09.1"}, true, ""},
		{"models:/ctr_demo-2/v_1", registry.Ref{Name: "ctr_demo-2", Version: "v_1"}, true, ""},
		{"models:/ctr/current", registry.Ref{Name: "ctr", Version: "current"}, true, ""},

		// Not references: plain bundle URIs.
		{"gs://bucket/models/ctr/1", registry.Ref{}, false, ""},
		{"testdata/models/ctr-demo", registry.Ref{}, false, ""},
		{"models/ctr/1", registry.Ref{}, false, ""},
		{"", registry.Ref{}, false, ""},

		{"models:/", registry.Ref{}, true, "want models:/<name>@current or models:/<name>/<version>"},
		{"models:/ctr", registry.Ref{}, true, "want models:/<name>@current"},
		{"models:/ctr@other", registry.Ref{}, true, "only @current alias"},
		{"models:/ctr@", registry.Ref{}, true, "only @current alias"},
		{"models:/ctr@current/1", registry.Ref{}, true, `"ctr@current" holds "@"`},
		{"models:/@current", registry.Ref{}, true, "model name is empty"},
		{"models://1", registry.Ref{}, true, "model name is empty"},
		{"models:/ctr/", registry.Ref{}, true, "version is empty"},
		{"models:/../x", registry.Ref{}, true, `".." starts with '.'`},
		{"models:/ctr/..", registry.Ref{}, true, `".." starts with '.'`},
		{"models:/ctr/../../etc", registry.Ref{}, true, `"../../etc" starts with '.'`},
		{"models:/ctr/1/../../etc", registry.Ref{}, true, `holds "/"`},
		{"models:/a/b/c", registry.Ref{}, true, `"b/c" holds "/"`},
		{"models:/.hidden/1", registry.Ref{}, true, "starts with '.'"},
		{"models:/ctr/1\n", registry.Ref{}, true, `holds "\n"`},
		{"models:/ctr/1\x00", registry.Ref{}, true, `holds "\x00"`},
		{"models:/c tr/1", registry.Ref{}, true, `holds " "`},
		{"models:/ctr/é", registry.Ref{}, true, `holds "\xc3"`},
		{"models:/ctr/events", registry.Ref{}, true, "reserved"},
		{"models:/ctr/current.json", registry.Ref{}, true, "reserved"},
		{"models:/" + strings.Repeat("a", 129) + "/1", registry.Ref{}, true, "longer than 128 bytes"},
	}
	for _, tt := range tests {
		got, ok, err := registry.ParseRef(tt.in)
		if ok != tt.ok {
			t.Errorf("ParseRef(%q) ok = %v, want %v", tt.in, ok, tt.ok)
		}
		if tt.err != "" {
			if !errors.Is(err, registry.ErrInvalidRef) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRef(%q) error = %v, want ErrInvalidRef saying %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if ok && got.String() != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, got.String())
		}
	}
}
