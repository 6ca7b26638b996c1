from shared.ops.cli import main

main()
