from camforensics.cli.app import main

main()
