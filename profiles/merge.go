package profiles

import (
	"maps"
	"strconv"
	"strings"
)

// apply returns the effective profile of layer l over base (its parent's
// effective profile, or defaults()).
//
// The merge rules, which the package documentation of Catalog repeats:
//   - name, description, match and extends come from l alone: they describe
//     the file, not what the server may do, so they are never inherited;
//   - a scalar (rootfs, image, pathArgs, limits.*, tools.pin, tools.scan,
//     install.scripts) set in l replaces the parent's; mappings merge key by
//     key, so `limits: {memory: 1Gi}` keeps the parent's pids, cpus and tmp,
//     and setenv keys of l replace the same keys of the parent;
//   - lists (network.allow, mounts, env, seccomp.allow, tools.allow,
//     tools.deny) are the parent's entries followed by l's: extends can only
//     add to them. An entry the parent already has is not repeated.
func apply(base *Profile, l *layer) *Profile {
	out := base.clone()
	for k := range out.pos {
		if notInherited(k) {
			delete(out.pos, k)
		}
	}
	out.Name, out.Description, out.Extends = l.p.Name, l.p.Description, l.p.Extends
	out.Match = append([]Match(nil), l.p.Match...)

	if l.has("rootfs") {
		out.RootFS = l.p.RootFS
		if out.RootFS != RootFSImage {
			out.Image = "" // a parent's image does not outlive its rootfs mode
			delete(out.pos, "image")
		}
	}
	if l.has("image") {
		out.Image = l.p.Image
	}
	if l.has("pathArgs") {
		out.PathArgs = l.p.PathArgs
	}
	if l.has("limits.memory") {
		out.Limits.Memory = l.p.Limits.Memory
	}
	if l.has("limits.pids") {
		out.Limits.PIDs = l.p.Limits.PIDs
	}
	if l.has("limits.cpus") {
		out.Limits.CPUs = l.p.Limits.CPUs
	}
	if l.has("limits.tmp") {
		out.Limits.Tmp = l.p.Limits.Tmp
	}
	if l.has("limits.required") {
		out.Limits.Required = l.p.Limits.Required
	}
	if l.has("tools.pin") {
		out.Tools.Pin = l.p.Tools.Pin
	}
	if l.has("tools.scan") {
		out.Tools.Scan = l.p.Tools.Scan
	}
	if l.has("install.scripts") {
		out.Install.Scripts = l.p.Install.Scripts
	}
	maps.Copy(out.Setenv, l.p.Setenv)

	// Lists append; remap says where each of l's entries ended up, so that
	// its recorded lines can be renumbered ("env[0]" of l may be "env[3]").
	remap := map[string][]int{}
	out.Network.Allow, remap["network.allow"] = appendNew(out.Network.Allow, l.p.Network.Allow)
	out.Mounts, remap["mounts"] = appendNew(out.Mounts, l.p.Mounts)
	out.Env, remap["env"] = appendNew(out.Env, l.p.Env)
	out.Seccomp.Allow, remap["seccomp.allow"] = appendNew(out.Seccomp.Allow, l.p.Seccomp.Allow)
	out.Tools.Allow, remap["tools.allow"] = appendNew(out.Tools.Allow, l.p.Tools.Allow)
	out.Tools.Deny, remap["tools.deny"] = appendNew(out.Tools.Deny, l.p.Tools.Deny)

	for k, line := range l.pos {
		out.pos[remapField(k, remap)] = position{file: l.file, line: line}
	}
	return out
}

// notInherited reports whether a recorded field belongs to the file that
// wrote it and is not passed on to profiles extending it.
func notInherited(field string) bool {
	for _, f := range []string{"name", "description", "extends", "match"} {
		if field == f || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") {
			return true
		}
	}
	return false
}

// appendNew appends the entries of add that dst does not have yet and
// returns, for each entry of add, its index in the result.
func appendNew[T comparable](dst, add []T) ([]T, []int) {
	idx := make([]int, len(add))
	for i, v := range add {
		j := -1
		for k, w := range dst {
			if w == v {
				j = k
				break
			}
		}
		if j < 0 {
			j = len(dst)
			dst = append(dst, v)
		}
		idx[i] = j
	}
	return dst, idx
}

// remapField renumbers the list index in a field path ("mounts[0].mode")
// after the list was appended to a parent's.
func remapField(field string, remap map[string][]int) string {
	for list, idx := range remap {
		rest, ok := strings.CutPrefix(field, list+"[")
		if !ok {
			continue
		}
		n, tail, ok := strings.Cut(rest, "]")
		if !ok {
			return field
		}
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(idx) {
			return field
		}
		return list + "[" + strconv.Itoa(idx[i]) + "]" + tail
	}
	return field
}
