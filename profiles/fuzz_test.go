package profiles

import (
	"errors"
	"io/fs"
	"testing"
)

// FuzzDecode checks that any input either loads or fails with a
// *ValidationError, never a panic or another error type, and that what
// loads renders to YAML that loads again.
func FuzzDecode(f *testing.F) {
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	for _, e := range entries {
		data, _ := fs.ReadFile(builtinFS, "builtin/"+e.Name())
		f.Add(data)
	}
	for _, s := range []string{"", "name: x\n", "- a\n", "name: x\nlimits: {memory: 1Gi, pids: 2}\n", "name: x\nmounts: [{host: ~, path: /a}]\n", "a: &x 1\nb: *x\n", "? a\n: b\n", "name: !!str\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decode("f.yaml", data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
			}
			return
		}
		l.p.Extends = "" // no catalog here
		p := apply(defaults(), l)
		p.File = "f.yaml"
		if p.check() != nil {
			return
		}
		if _, err := p.YAML(); err != nil {
			t.Fatalf("YAML() of a loaded profile: %v\ninput:\n%s", err, data)
		}
	})
}
