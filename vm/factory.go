package vm

import (
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"
)

// VMID is the Lux VM ID of SessionVM: the bytes of Name ("sessionvm")
// zero-padded to 32, as Lux derives the IDs of named VMs. In CB58 it is
// speKUgLBX6WRD5cfGeEfLa43LxTXUBckvtv4td6F3eTXvRP48; a node finds the
// plugin as <plugin-dir>/<VMID>. It is a variable, as in the reference
// implementation; do not modify it.
var VMID = ids.ID{'s', 'e', 's', 's', 'i', 'o', 'n', 'v', 'm'}

// Factory makes SessionVM instances. Its New has the reference
// implementation's signature, so code written against the reference
// (&vm.Factory{}, then factory.New(logger)) compiles unchanged.
//
// Unlike the reference, whose VM kept everything in memory maps and was
// usable at once, the VM New returns is a chain VM that must be
// initialized with a database and a genesis before use: a Lux node calls
// Initialize itself; an embedding program calls it as in MIGRATING.md.
type Factory struct {
	// Options are applied to every VM New makes, for example
	// vm.WithHandler(service.NewHandler) for the full JSON-RPC API.
	Options []Option
}

// New returns a new, uninitialized VM that logs to logger (nil: no logs).
func (f *Factory) New(logger luxlog.Logger) (*VM, error) {
	opts := make([]Option, 0, len(f.Options)+1)
	opts = append(opts, WithLogger(logger))
	opts = append(opts, f.Options...)
	return New(opts...), nil
}

// NodeFactory is Factory in the shape a Lux node's VM manager registers
// (github.com/luxfi/node/vms.Factory, whose New returns interface{}), for
// running SessionVM inside a node's process instead of as a plugin.
type NodeFactory struct {
	// Options are applied to every VM New makes.
	Options []Option
}

// New returns a new, uninitialized *VM as an interface{}.
func (f NodeFactory) New(logger luxlog.Logger) (interface{}, error) {
	return (&Factory{Options: f.Options}).New(logger)
}

// WithLogger sets the logger of the VM (a Lux node passes its chain
// logger). Without it the VM logs nothing.
func WithLogger(logger luxlog.Logger) Option {
	return func(v *VM) { v.log = logger }
}
