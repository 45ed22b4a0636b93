package broker

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// validBenchText is a 10 MB tool result that is mostly one JSON string:
// printable ASCII with some multibyte UTF-8 and occasional escapes.
func validBenchText() []byte {
	const size = 10 << 20
	var b bytes.Buffer
	b.Grow(size + 256)
	b.WriteString(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`)
	chunks := []string{
		"The quick brown fox jumps over the lazy dog; ",
		"func main() { fmt.Println(42) }",
		`\n`,
		"café déjà vu — naïve résumé, 日本語のテキスト, emoji 😀. ",
		`she said \"hello\" to C:\\Users\\me `,
		"0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz ",
		`\u00e9\t`,
		"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ",
	}
	for i := 0; b.Len() < size; i++ {
		b.WriteString(chunks[i%len(chunks)])
	}
	b.WriteString(`"}],"isError":false}}`)
	return b.Bytes()
}

// validBenchStructured is 10 MB of arrays of small objects with numbers,
// booleans, nulls and nested objects.
func validBenchStructured() []byte {
	const size = 10 << 20
	var b bytes.Buffer
	b.Grow(size + 512)
	b.WriteString(`{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"rows":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		n := strconv.Itoa(i)
		b.WriteString(`{"id":` + n + `,"name":"row-` + n + `","ok":true,"deleted":false,"score":-` + n + `.25e-3,"ratio":0.5,`)
		b.WriteString(`"tags":["a","bc",null],"pos":{"x":` + n + `,"y":-1,"z":{"w":[1,2,3]}},"owner":null}`)
	}
	b.WriteString(`]}}}`)
	return b.Bytes()
}

func BenchmarkValidJSON(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"text10MB", validBenchText()},
		{"structured10MB", validBenchStructured()},
	}
	for _, in := range inputs {
		if !json.Valid(in.data) || !validJSON(in.data) {
			b.Fatalf("%s: benchmark input is not valid JSON", in.name)
		}
		b.Run(in.name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				json.Valid(in.data)
			}
		})
		b.Run(in.name+"/validJSON", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				validJSON(in.data)
			}
		})
	}
}
