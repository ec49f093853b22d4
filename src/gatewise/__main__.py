from gatewise.cli import main

main()
