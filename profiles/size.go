package profiles

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a byte size such as 512Mi, 512M, 512MiB, 1G, 64k or 1048576.
// Units are K, M, G and T, case-insensitive, always binary multiples (1K =
// 1024), with or without "i" and a trailing "B"; a decimal number needs a
// unit ("1.5G"). The size must be at least one byte.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a size: use a positive number with an optional unit, like 512Mi or 2G", s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], s[i:]
	if num == "" || num == "." {
		return 0, bad
	}
	mult, ok := sizeUnit(unit)
	if !ok {
		return 0, bad
	}
	if strings.Contains(num, ".") {
		if mult == 1 {
			return 0, bad // a fraction of a byte means a missing unit
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, bad
		}
		v := math.Floor(f * float64(mult))
		if v < 1 {
			return 0, bad
		}
		if v >= math.MaxInt64 {
			return 0, fmt.Errorf("%q is not a size: it is larger than 2^63-1 bytes", s)
		}
		return int64(v), nil
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxInt64/uint64(mult) {
		return 0, fmt.Errorf("%q is not a size: it is larger than 2^63-1 bytes", s)
	}
	if n == 0 {
		return 0, bad
	}
	return int64(n) * mult, nil
}

func sizeUnit(u string) (int64, bool) {
	u = strings.ToLower(u)
	if u == "" || u == "b" {
		return 1, true
	}
	u = strings.TrimSuffix(u, "b")
	u = strings.TrimSuffix(u, "i")
	switch u {
	case "k":
		return 1 << 10, true
	case "m":
		return 1 << 20, true
	case "g":
		return 1 << 30, true
	case "t":
		return 1 << 40, true
	}
	return 0, false
}

// FormatSize writes n bytes in the largest binary unit that divides it
// exactly (512Mi, 2Gi), or as plain bytes. ParseSize reads it back.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n > 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
