"""The `buildspec` process (cli.console) with a hook that says whether the interpreter's
normal clean-up ran: ``[sys.executable, "-c", WITH_ATEXIT, *argv]``."""

WITH_ATEXIT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('clean-up ran', file=sys.stderr))\n"
    "sys.argv = ['buildspec', *sys.argv[1:]]\n"
    "from buildspec.cli import console\n"
    "console()\n"
)
