package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goFile is one non-test Go file of the module, parsed.
type goFile struct {
	path  string // relative to the module root
	lines int
	fset  *token.FileSet
	file  *ast.File
}

// sourceFiles parses every non-test Go file of the module outside
// testdata.
func sourceFiles(t *testing.T) []goFile {
	t.Helper()
	root := filepath.Join("..", "..")
	var files []goFile
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "node_modules" || strings.HasPrefix(n, ".") && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, goFile{path: filepath.ToSlash(rel), lines: strings.Count(string(src), "\n"), fset: fset, file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found %d Go files; is this the module root?", len(files))
	}
	return files
}

// TestLauncherRootSize: the launcher root is one session end to end and
// nothing else; the CLI back ends and stores live in packages of their own.
func TestLauncherRootSize(t *testing.T) {
	const limit = 3000
	total := 0
	for _, f := range sourceFiles(t) {
		if filepath.Dir(f.path) == "launcher" {
			total += f.lines
		}
	}
	t.Logf("launcher root: %d lines of non-test code", total)
	if total == 0 || total >= limit {
		t.Errorf("launcher root has %d lines of non-test code; keep it under %d by moving what is not the session's into a package below launcher", total, limit)
	}
}

// longMarker starts the doc-comment paragraph that justifies a function
// over maxFunc lines outside the launcher root and runtime.
const (
	maxFunc    = 100
	longMarker = "Length:"
)

// TestFunctionLength: no function in the launcher root or
// launcher/runtime is over maxFunc lines; elsewhere, a longer one says
// why in its doc comment (a paragraph starting "Length:"), e.g. a
// hand-tuned parser. A long control loop is split instead.
func TestFunctionLength(t *testing.T) {
	for _, f := range sourceFiles(t) {
		dir := filepath.Dir(f.path)
		strict := dir == "launcher" || dir == "launcher/runtime" || strings.HasPrefix(dir, "launcher/runtime/")
		for _, d := range f.file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := f.fset.Position(fd.End()).Line - f.fset.Position(fd.Pos()).Line + 1
			if n <= maxFunc {
				continue
			}
			name := f.path + ": " + fd.Name.Name
			switch {
			case strict:
				t.Errorf("%s is %d lines; the launcher root and runtime keep functions under %d: split it along its steps", name, n, maxFunc)
			case fd.Doc == nil || !strings.Contains(fd.Doc.Text(), longMarker):
				t.Errorf("%s is %d lines: split it, or say why it stays long in a doc-comment paragraph starting %q", name, n, longMarker)
			}
		}
	}
}
