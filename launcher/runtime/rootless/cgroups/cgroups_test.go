package cgroups

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMissing(t *testing.T) {
	all := []string{Memory, Pids, CPU}
	for _, tc := range []struct {
		name string
		d    Delegation
		want []string
		out  []string
	}{
		{"nothing delegated", Delegation{}, all, all},
		{"controllers without a parent count for nothing", Delegation{Controllers: all}, []string{Pids}, []string{Pids}},
		{"all delegated", Delegation{Parent: "/p", Controllers: all}, all, nil},
		{"cpu missing", Delegation{Parent: "/p", Controllers: []string{Memory, Pids}}, all, []string{CPU}},
		{"order of want, no repeats", Delegation{Parent: "/p"}, []string{CPU, Memory, CPU}, []string{CPU, Memory}},
		{"nothing wanted", Delegation{}, nil, nil},
	} {
		if got := tc.d.Missing(tc.want); !reflect.DeepEqual(got, tc.out) {
			t.Errorf("%s: Missing(%v) = %v, want %v", tc.name, tc.want, got, tc.out)
		}
	}
}

func TestWanted(t *testing.T) {
	mem, quota, period, shares := int64(512<<20), int64(100000), uint64(100000), uint64(512)
	for _, tc := range []struct {
		name string
		r    *specs.LinuxResources
		out  []string
	}{
		{"no resources", nil, nil},
		{"devices only", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}, nil},
		{"sandbox's limits", &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &mem, Swap: &mem},
			Pids:   &specs.LinuxPids{Limit: 128},
			CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		}, []string{Memory, Pids, CPU}},
		{"empty sections", &specs.LinuxResources{Memory: &specs.LinuxMemory{}, Pids: &specs.LinuxPids{}, CPU: &specs.LinuxCPU{}}, nil},
		{"cpuset is not the cpu controller", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}}, nil},
		{"shares", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}, []string{CPU}},
	} {
		if got := Wanted(tc.r); !reflect.DeepEqual(got, tc.out) {
			t.Errorf("%s: Wanted = %v, want %v", tc.name, got, tc.out)
		}
	}
}
