from fwyy_ollama.cli import main

main()
