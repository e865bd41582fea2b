package main

import (
	"github.com/luxfi/ids"

	"github.com/luxfi/session/vm"
)

// VMID returns the Lux VM ID of SessionVM, vm.VMID: the bytes of its name,
// "sessionvm", zero-padded to 32 bytes, as Lux derives the IDs of named VMs
// (ids.ID{'x', 's', 'v', 'm'} for xsvm). A node looks the plugin up as the
// file <plugin-dir>/<VMID().String()>.
func VMID() ids.ID { return vm.VMID }
