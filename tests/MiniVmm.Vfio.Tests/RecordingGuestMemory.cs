using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>Guest memory backed by a byte array that records every DMA write.</summary>
internal sealed class RecordingGuestMemory(int size) : IGuestMemoryAccess
{
    private readonly object sync = new();
    private readonly byte[] memory = new byte[size];
    private readonly List<(ulong Gpa, int Length)> writes = [];

    public ulong Size => (ulong)memory.Length;

    public void Write(ulong gpa, ReadOnlySpan<byte> data)
    {
        lock (sync)
        {
            data.CopyTo(memory.AsSpan(checked((int)gpa)));
            writes.Add((gpa, data.Length));
        }
    }

    public int WriteCount
    {
        get
        {
            lock (sync)
            {
                return writes.Count;
            }
        }
    }

    public (ulong Gpa, int Length)[] Writes()
    {
        lock (sync)
        {
            return writes.ToArray();
        }
    }

    public byte[] Snapshot()
    {
        lock (sync)
        {
            return (byte[])memory.Clone();
        }
    }

    public void ClearWrites()
    {
        lock (sync)
        {
            writes.Clear();
        }
    }
}
