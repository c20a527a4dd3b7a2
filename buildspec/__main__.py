from buildspec.cli import console

console()
