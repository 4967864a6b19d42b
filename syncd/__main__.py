from syncd.cli.main import main

main(prog_name="syncd")  # also `python -m syncd`: its usage lines and shell completion are syncd's
