// Empty stand-in for github.com/luxfi/threshold: see ../README.md.
module github.com/luxfi/threshold

go 1.21
