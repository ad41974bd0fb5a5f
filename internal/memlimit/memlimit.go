// Package memlimit gives the Go runtime a soft memory limit from the
// container's, when none is set: without one, Go's heap goal is twice the
// live heap and a long run's resident memory creeps towards the container's
// limit, where the kernel kills it (docs/performance.md, "The built binary
// and memory").
package memlimit

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the container's limit given to the Go runtime: the rest is
// for what the runtime does not count (thread stacks, cgo, the page cache
// charged to the container).
const Fraction = 0.9

// ReadFile reads a file; os.ReadFile in production, a map in tests.
type ReadFile func(name string) ([]byte, error)

// FromCgroup is the memory limit of the cgroup the process is in, in bytes,
// and the file it came from: cgroup v2 (memory.max) or v1
// (memory.limit_in_bytes), at the process's cgroup path and at the root of
// /sys/fs/cgroup (inside a container's cgroup namespace the path is "/").
// ok is false when there is no limit ("max", or v1's near-2^63 value) or no
// cgroup file can be read.
func FromCgroup(read ReadFile) (limit int64, file string, ok bool) {
	var v1, v2 string
	if data, err := read("/proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			// hierarchy-ID:controller-list:cgroup-path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case strings.Contains(","+parts[1]+",", ",memory,"):
				v1 = parts[2]
			}
		}
	}
	var candidates []string
	if v2 != "" {
		candidates = append(candidates, path.Join("/sys/fs/cgroup", v2, "memory.max"))
	}
	if v1 != "" {
		candidates = append(candidates, path.Join("/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"))
	}
	candidates = append(candidates, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, f := range candidates {
		data, err := read(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(data))
		if s == "max" {
			return 0, f, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		// cgroup v1 says "no limit" with the largest page-aligned int64.
		if n >= math.MaxInt64/2 {
			return 0, f, false
		}
		return n, f, true
	}
	return 0, "", false
}

// Apply sets the runtime's soft memory limit to Fraction of the cgroup's
// unless GOMEMLIMIT is set (the runtime honours that itself). It returns
// the limit set (0 if none) and the file it came from.
func Apply(getenv func(string) (string, bool), read ReadFile) (int64, string) {
	if v, ok := getenv("GOMEMLIMIT"); ok && v != "" {
		return 0, ""
	}
	limit, file, ok := FromCgroup(read)
	if !ok {
		return 0, file
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return soft, file
}

// OSReadFile is os.ReadFile, for Apply.
func OSReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
