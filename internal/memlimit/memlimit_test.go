package memlimit

import (
	"io/fs"
	"math"
	"runtime/debug"
	"testing"
)

func files(m map[string]string) ReadFile {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestFromCgroup(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		limit int64
		file  string
		ok    bool
	}{
		{"v2 at the process's path", map[string]string{
			"/proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "2147483648\n",
		}, 2 << 30, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max", true},
		{"v2 in a cgroup namespace", map[string]string{
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "536870912\n",
		}, 512 << 20, "/sys/fs/cgroup/memory.max", true},
		{"v2 without a limit", map[string]string{
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "max\n",
		}, 0, "/sys/fs/cgroup/memory.max", false},
		{"v1", map[string]string{
			"/proc/self/cgroup": "5:cpuacct,cpu:/\n4:memory:/docker/abc\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824",
		}, 1 << 30, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", true},
		{"v1 without a limit", map[string]string{
			"/proc/self/cgroup":                           "4:memory:/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
		}, 0, "/sys/fs/cgroup/memory/memory.limit_in_bytes", false},
		{"v1 path not mounted there: the root file", map[string]string{
			"/proc/self/cgroup":                           "4:memory:/elsewhere\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456",
		}, 256 << 20, "/sys/fs/cgroup/memory/memory.limit_in_bytes", true},
		{"nothing readable", map[string]string{}, 0, "", false},
		{"garbage", map[string]string{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "lots"}, 0, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			limit, file, ok := FromCgroup(files(tt.files))
			if limit != tt.limit || file != tt.file || ok != tt.ok {
				t.Errorf("FromCgroup = %d, %q, %v; want %d, %q, %v", limit, file, ok, tt.limit, tt.file, tt.ok)
			}
		})
	}
}

func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	cg := files(map[string]string{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "1000000000\n"})
	none := func(string) (string, bool) { return "", false }

	if soft, _ := Apply(func(string) (string, bool) { return "300MiB", true }, cg); soft != 0 {
		t.Errorf("with GOMEMLIMIT set, Apply set %d", soft)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the runtime limit changed to %d", got)
	}
	soft, file := Apply(none, cg)
	if soft != 900000000 || file != "/sys/fs/cgroup/memory.max" {
		t.Errorf("Apply = %d, %q; want 900000000 (%.0f%% of the cgroup's) from memory.max", soft, file, Fraction*100)
	}
	if got := debug.SetMemoryLimit(-1); got != soft {
		t.Errorf("runtime limit %d, want %d", got, soft)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if soft, _ := Apply(none, files(nil)); soft != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("without a cgroup limit Apply set %d", soft)
	}
}
