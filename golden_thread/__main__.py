from golden_thread.cli import main

main()
