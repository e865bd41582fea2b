// Empty stand-in for github.com/luxfi/coreth: see ../README.md.
module github.com/luxfi/coreth

go 1.21
