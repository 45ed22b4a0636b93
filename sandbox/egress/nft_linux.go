package egress

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ipsDstNAT is conntrack's IPS_DST_NAT status bit (linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// tableName is the nftables table mcpbox installs in a sandbox's netns.
const tableName = "mcpbox"

// Install adds the sandbox's egress rules inside the namespace:
//
//	nat output:    TCP and UDP to port 53, any address  → redirect to :53 (the DNS stub)
//	               TCP to 127.0.0.1 or ::1 on a port of
//	               hostLoopbackPorts                     → redirect to :proxyPort (the proxy,
//	                                                       which dials the host's loopback)
//	               anything else to loopback            → untouched (the sandbox's own services)
//	               other TCP                             → redirect to :proxyPort (the proxy)
//	filter output: loopback, and what was redirected    → accept
//	               the rest (UDP, ICMP, ...)             → drop: the sender gets EPERM at once
//
// The proxy and the DNS stub must listen on 127.0.0.1 and ::1 inside the
// namespace; with these rules nothing else leaves it. hostLoopbackPorts
// are the ports of the allowlist's localhost:PORT entries
// (Allowlist.HostLoopbackPorts): on them the sandbox's loopback is the
// host's, and nothing in the sandbox can listen there usefully.
func (n *NetNS) Install(proxyPort uint16, hostLoopbackPorts ...uint16) error {
	return n.Do(func() error { return installRules(proxyPort, hostLoopbackPorts) })
}

func installRules(proxyPort uint16, hostLoopbackPorts []uint16) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: tableName})
	accept, drop := nftables.ChainPolicyAccept, nftables.ChainPolicyDrop
	nat := c.AddChain(&nftables.Chain{
		Name: "nat_output", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept,
	})
	filter := c.AddChain(&nftables.Chain{
		Name: "filter_output", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &drop,
	})
	rule := func(chain *nftables.Chain, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	}
	ret := &expr.Verdict{Kind: expr.VerdictReturn}
	acc := &expr.Verdict{Kind: expr.VerdictAccept}

	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		rule(nat, append(append(l4proto(proto), dport(53)...), redirect(53)...)...)
	}
	v4, v6 := netip.AddrFrom4([4]byte{127, 0, 0, 1}).As4(), netip.IPv6Loopback().As16()
	for _, port := range hostLoopbackPorts {
		rule(nat, slices.Concat(daddr(unix.NFPROTO_IPV4, 16, v4[:]), l4proto(unix.IPPROTO_TCP), dport(port), redirect(proxyPort))...)
		rule(nat, slices.Concat(daddr(unix.NFPROTO_IPV6, 24, v6[:]), l4proto(unix.IPPROTO_TCP), dport(port), redirect(proxyPort))...)
	}
	rule(nat, append(loopback4(), ret)...)
	rule(nat, append(loopback6(), ret)...)
	rule(nat, append(l4proto(unix.IPPROTO_TCP), redirect(proxyPort)...)...)

	rule(filter, append(loopback4(), acc)...)
	rule(filter, append(loopback6(), acc)...)
	rule(filter,
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(ipsDstNAT), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)},
		acc)

	if err := c.Flush(); err != nil {
		return fmt.Errorf("egress: install nftables rules: %w", err)
	}
	return nil
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(port)},
	}
}

func redirect(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: be16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

// daddr matches packets of family whose destination address (at offset
// in the network header) is exactly addr.
func daddr(family byte, offset uint32, addr []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
	}
}

func loopback4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127, 0, 0, 0}},
	}
}

func loopback6() []expr.Any {
	lo := netip.IPv6Loopback().As16()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: lo[:]},
	}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func native32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
