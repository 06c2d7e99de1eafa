using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using MiniVmm.Migration.Stream;

namespace MiniVmm.Bench;

/// <summary>
/// Guest pages through a real TCP loopback connection, as the source sends them: each page a
/// be64 header and 4 KiB of data, copied into the stream's buffer (<see cref="PutBuffer"/>) or
/// queued by reference and sent with gathered sendmsg (<see cref="PutBufferByReference"/>). A
/// thread on the other end reads and discards, as fast as it can. GB/s counts page data.
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class SocketSendBenchmarks
{
    private const int PageSize = 4096;
    private const int Pages = 1 << 14; // 64 MiB per invocation

    private byte[] _ram = null!;
    private Socket _listener = null!;
    private Socket _sender = null!;
    private NetworkStream _network = null!;
    private MigrationStreamWriter _writer = null!;
    private Thread _drain = null!;
    private volatile bool _stopping;

    /// <summary>Connects the pair and starts the draining thread.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _ram = new byte[Pages * PageSize];
        new Random(3).NextBytes(_ram);
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1);
        _sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _sender.Connect(_listener.LocalEndPoint!);
        Socket receiver = _listener.Accept();
        _drain = new Thread(() =>
        {
            byte[] sink = new byte[1 << 20];
            try
            {
                while (!_stopping && receiver.Receive(sink) > 0)
                {
                }
            }
            catch (SocketException)
            {
            }
            finally
            {
                receiver.Dispose();
            }
        }) { IsBackground = true, Name = "drain" };
        _drain.Start();
        _network = new NetworkStream(_sender, ownsSocket: false);
        _writer = new MigrationStreamWriter(_network, leaveOpen: true);
    }

    /// <summary>Closes the connection and stops the draining thread.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _stopping = true;
        _writer.Dispose();
        _network.Dispose();
        _sender.Shutdown(SocketShutdown.Both);
        _sender.Dispose();
        _drain.Join();
        _listener.Dispose();
    }

    /// <summary>64 MiB of pages copied into the stream buffer, then written.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    [BytesPerOperation(PageSize)]
    public void PutBuffer()
    {
        ReadOnlySpan<byte> ram = _ram;
        for (int i = 0; i < Pages; i++)
        {
            _writer.PutBe64((ulong)i << 12 | 0x08);
            _writer.PutBuffer(ram.Slice(i * PageSize, PageSize));
        }

        _writer.Flush();
    }

    /// <summary>64 MiB of pages queued by reference and sent with gathered sendmsg.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [BytesPerOperation(PageSize)]
    public void PutBufferByReference()
    {
        ReadOnlySpan<byte> ram = _ram;
        for (int i = 0; i < Pages; i++)
        {
            _writer.PutBe64((ulong)i << 12 | 0x08);
            _writer.PutBufferByReference(ram.Slice(i * PageSize, PageSize));
        }

        _writer.Flush();
    }
}
