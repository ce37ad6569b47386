"""Back end: typed IR -> nn.Module and -> readable Python source. Imports torch."""
