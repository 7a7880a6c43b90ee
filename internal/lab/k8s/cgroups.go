package k8s

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 controllers, the named
// systemd one, and the v2 unified one), from /proc/self/mountinfo.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// ... mount-point(4) ... - fstype source options
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") && len(fields) > 4 {
				out = append(out, fields[4])
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoCgroupFS
	}
	sort.Strings(out)
	return out, sc.Err()
}

// enterCgroup creates <name>/runtime in every hierarchy and moves pid into it. In the cpuset
// hierarchy the new groups get their parent's CPUs and memory nodes first (v1 starts them empty).
func enterCgroup(name string, pid int) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, name, "runtime")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(m, "cpuset.cpus")); err == nil && !strings.HasSuffix(m, "unified") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(m, f))
				if err != nil {
					return err
				}
				for _, d := range []string{filepath.Join(m, name), dir} {
					if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
						return fmt.Errorf("%s: %w", filepath.Join(d, f), err)
					}
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// cgroupPIDs returns every process in <name> and below, in any hierarchy.
func cgroupPIDs(name string) []int {
	mounts, _ := cgroupMounts()
	seen := map[int]bool{}
	var out []int
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// CgroupExists reports whether <name> is in any hierarchy.
func CgroupExists(name string) bool {
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, name)); err == nil {
			return true
		}
	}
	return false
}

// removeCgroup kills every process in <name> and below (pods, shims, the runtime), waits for
// them to go, and removes the groups bottom-up in every hierarchy.
func removeCgroup(name string, limit time.Duration) error {
	if name == "" || strings.Contains(name, "..") || strings.Trim(name, "/") == "" {
		return fmt.Errorf("refusing to remove cgroup %q", name)
	}
	deadline := time.Now().Add(limit)
	for {
		pids := cgroupPIDs(name)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes %v do not exit", name, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mounts, _ := cgroupMounts()
	var errs []error
	for _, m := range mounts {
		root := filepath.Join(m, name)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first.
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for range 100 { // a group empties a moment after its last process dies
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}
