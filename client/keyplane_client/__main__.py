from keyplane_client.cli import main

main()
