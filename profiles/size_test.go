package profiles

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // substring; "" = no error
	}{
		{in: "512Mi", want: 512 << 20},
		{in: "512M", want: 512 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "512MB", want: 512 << 20},
		{in: "512m", want: 512 << 20},
		{in: "1G", want: 1 << 30},
		{in: "2Gi", want: 2 << 30},
		{in: "64k", want: 64 << 10},
		{in: "64Ki", want: 64 << 10},
		{in: "1T", want: 1 << 40},
		{in: "1Ti", want: 1 << 40},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: "1", want: 1},
		{in: "1.5Gi", want: 3 << 29},
		{in: "0.5K", want: 512},
		{in: "7T", want: 7 << 40},
		{in: "abc", err: `"abc" is not a size: use a positive number with an optional unit, like 512Mi or 2G`},
		{in: "", err: `"" is not a size`},
		{in: "0", err: "is not a size"},
		{in: "0Mi", err: "is not a size"},
		{in: "-1G", err: "is not a size"},
		{in: "+1G", err: "is not a size"},
		{in: "12X", err: `"12X" is not a size`},
		{in: "1 G", err: "is not a size"},
		{in: " 1G", err: "is not a size"},
		{in: "1GiB ", err: "is not a size"},
		{in: "1Gb2", err: "is not a size"},
		{in: "1iB", err: "is not a size"},
		{in: "1.5", err: "is not a size"},
		{in: "1.2.3M", err: "is not a size"},
		{in: ".", err: "is not a size"},
		{in: "Mi", err: "is not a size"},
		{in: "0x10", err: "is not a size"},
		{in: "1e3", err: "is not a size"},
		{in: "0.0001K", err: "is not a size"},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "9223372036854775808", err: "larger than"},
		{in: "8388608T", err: "larger than"},
		{in: "99999999999999999999999", err: "larger than"},
		{in: "9999999999.5T", err: "larger than"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParseSize(%q): %v", tt.in, err)
		case tt.err == "" && got != tt.want:
			t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		512 << 20: "512Mi", 2 << 30: "2Gi", 1 << 40: "1Ti", 64 << 10: "64Ki",
		1536 << 20: "1536Mi", 1000: "1000", 1: "1", 0: "0",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if n > 0 {
			if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
				t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
			}
		}
	}
}
