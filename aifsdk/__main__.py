from aifsdk.cli import main

main()
