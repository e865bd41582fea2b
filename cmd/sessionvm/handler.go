package main

import (
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

// newVM returns the VM the plugin serves, with the JSON-RPC API of package
// service mounted by CreateHandlers at "/rpc".
func newVM() *vm.VM {
	return vm.New(vm.WithHandler(service.NewHandler))
}
