using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>Guest memory backed by a byte array that records every DMA write.</summary>
internal sealed class RecordingGuestMemory(int size) : IGuestMemoryAccess
{
    private readonly object _sync = new();
    private readonly byte[] _memory = new byte[size];
    private readonly List<(ulong Gpa, int Length)> _writes = [];

    public ulong Size => (ulong)_memory.Length;

    public void Write(ulong gpa, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            data.CopyTo(_memory.AsSpan(checked((int)gpa)));
            _writes.Add((gpa, data.Length));
        }
    }

    public int WriteCount
    {
        get
        {
            lock (_sync)
            {
                return _writes.Count;
            }
        }
    }

    public (ulong Gpa, int Length)[] Writes()
    {
        lock (_sync)
        {
            return _writes.ToArray();
        }
    }

    public byte[] Snapshot()
    {
        lock (_sync)
        {
            return (byte[])_memory.Clone();
        }
    }

    public void ClearWrites()
    {
        lock (_sync)
        {
            _writes.Clear();
        }
    }
}
