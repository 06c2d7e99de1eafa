using MiniVmm.Native;
using MiniVmm.Vfio;

namespace MiniVmm.Vfio.Tests;

/// <summary>Reading and writing data fds the way QEMU's VFIO handler does.</summary>
internal static class DataFd
{
    public const int HeaderRecord = 36;
    public const int ChunkRecord = 12 + DmaEngineDevice.ChunkSize;
    public const int Tail = 44 + 12;

    /// <summary>Reads 1 MiB at a time until ENOMSG (precopy's temporary end).</summary>
    public static byte[] ReadUntilTemporaryEnd(VfioDevice device, FileDescriptorHandle fd)
    {
        var output = new MemoryStream();
        byte[] buffer = new byte[1024 * 1024];
        while (true)
        {
            int count;
            try
            {
                count = device.ReadData(fd, buffer);
            }
            catch (NativeCallException error) when (error.Errno == Errno.ENOMSG)
            {
                return output.ToArray();
            }
            Assert.That(count, Is.GreaterThan(0), "precopy must end with ENOMSG, not EOF");
            output.Write(buffer, 0, count);
        }
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes through <see cref="VfioDevice.ReadData"/>.</summary>
    public static byte[] ReadExactly(VfioDevice device, FileDescriptorHandle fd, int length)
    {
        byte[] data = new byte[length];
        int done = 0;
        while (done < length)
        {
            int count = device.ReadData(fd, data.AsSpan(done));
            Assert.That(count, Is.GreaterThan(0));
            done += count;
        }
        return data;
    }

    /// <summary>Reads until EOF (stop-copy's end of state); ENOMSG fails the test.</summary>
    public static byte[] ReadUntilEof(VfioDevice device, FileDescriptorHandle fd)
    {
        var output = new MemoryStream();
        byte[] buffer = new byte[1024 * 1024];
        int count;
        while ((count = device.ReadData(fd, buffer)) > 0)
        {
            output.Write(buffer, 0, count);
        }
        return output.ToArray();
    }
}
