from camforensics.cli.entry import main

main()
