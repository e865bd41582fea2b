package main

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	vmpb "github.com/luxfi/node/proto/pb/vm"
	"github.com/luxfi/node/vms/rpcchainvm/grpcutils"
)

// shutdownGuard works around a bug of rpcchainvm's server at node
// v1.22.75: after a failed Initialize it has already closed its "closed"
// channel, so the node's Shutdown call closes it again and the panic kills
// the plugin before it can exit cleanly. The guard turns that panic into a
// successful Shutdown (the server set its shutdown flag before panicking,
// and a failed Initialize already closed its connections), so the process
// then exits on the node's SIGTERM like any other.
func shutdownGuard(logger *slog.Logger) grpcutils.ServerOption {
	return grpcutils.WithUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if info.FullMethod != vmpb.VM_Shutdown_FullMethodName {
			return handler(ctx, req)
		}
		defer func() {
			if r := recover(); r != nil {
				logger.Warn("rpcchainvm server panicked in Shutdown (after a failed Initialize); treating it as done", "panic", r)
				resp, err = &emptypb.Empty{}, nil
			}
		}()
		return handler(ctx, req)
	})
}
