namespace MiniVmm.Migration.Ram;

/// <summary>Where one RAM block goes: its name, guest physical address and size in bytes, and how its memory is provided.</summary>
public sealed record RamBlockLayout(string IdStr, long GuestAddress, long Size, RamBlockBacking? Backing = null);
