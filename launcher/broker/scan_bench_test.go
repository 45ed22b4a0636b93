package broker

import (
	"fmt"
	"testing"
)

// BenchmarkScanCorpus scans everything the servers of testdata/toolcorpus
// list, as the broker does at the start of a session: what the poisoning
// scan costs on honest servers.
func BenchmarkScanCorpus(b *testing.B) {
	servers := loadToolCorpus(b)
	names := make([][]string, len(servers))
	items := 0
	for i, c := range servers {
		names[i] = c.toolNames(b)
		items += len(c.Tools) + len(c.Prompts) + len(c.Resources) + len(c.Templates)
	}
	for b.Loop() {
		for i, c := range servers {
			if fs := scanServer(c, names[i], nil); len(fs) != 0 {
				b.Fatalf("%s: %d findings", c.file, len(fs))
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*items), "ns/item")
}

// BenchmarkScanPoisoned scans the poisoned corpus, each case as a tool
// and, whole, as instructions: text that the rules match, so that their
// regexps run.
func BenchmarkScanPoisoned(b *testing.B) {
	files := corpus(b, "poisoned")
	for b.Loop() {
		for name, f := range files {
			if len(ScanTool(f, 0)) == 0 {
				b.Fatalf("%s: not flagged", name)
			}
			ScanInstructions(string(f))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(files)), "ns/case")
}

// BenchmarkScanRules times the steps of scanText over the text of the
// corpus: normalising, finding the rules' words, and each pattern rule,
// once as scanText runs it (the regexp only where the words are) and once
// with the regexp alone, to show which rules cost what and how much their
// words save.
func BenchmarkScanRules(b *testing.B) {
	index, plans := scanPrepared()
	var norms []string
	bytes := 0
	for _, s := range corpusTexts(b) {
		n, _ := scanNormalise(s[:scanCut(s)], false)
		norms = append(norms, n)
		bytes += len(n)
	}
	b.Run("normalise", func(b *testing.B) {
		texts := corpusTexts(b)
		b.SetBytes(int64(bytes))
		for b.Loop() {
			for _, s := range texts {
				scanNormalise(s[:scanCut(s)], false)
			}
		}
	})
	b.Run("words", func(b *testing.B) {
		b.SetBytes(int64(bytes))
		for b.Loop() {
			for _, n := range norms {
				index.find(n)
			}
		}
	})
	words := make([]scanSet, len(norms))
	for i, n := range norms {
		words[i] = index.find(n)
	}
	for i, r := range scanRules {
		name := fmt.Sprintf("%02d-%s", i, r.rule)
		b.Run(name+"/scan", func(b *testing.B) {
			b.SetBytes(int64(bytes))
			for b.Loop() {
				for j, n := range norms {
					if words[j].holds(plans[i].need) {
						r.find(n, plans[i])
					}
				}
			}
		})
		b.Run(name+"/regexp", func(b *testing.B) {
			b.SetBytes(int64(bytes))
			for b.Loop() {
				for _, n := range norms {
					r.find(n, scanPlan{})
				}
			}
		})
	}
}
