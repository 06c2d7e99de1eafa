using System.Collections.Concurrent;
using MiniVmm.Native;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// A real two-way connection between an in-process source and destination, made of two
/// socketpairs joined by pump threads, whose destination → source direction can be held: what
/// the destination sends back (the return path) is read at once but kept until <see cref="Release"/>.
/// </summary>
internal sealed class GatedRelay : IDisposable
{
    private readonly UnixSocketPair _source = UnixSocketPair.Create();
    private readonly UnixSocketPair _destination = UnixSocketPair.Create();
    private readonly ManualResetEventSlim _open;
    private readonly BlockingCollection<byte[]?> _backward = [];
    private readonly Thread[] _threads;
    private long _backwardBytes;
    private long _passedBytes;
    private int _disposed;

    public GatedRelay(bool backwardOpen = false)
    {
        _open = new ManualResetEventSlim(backwardOpen);
        _threads =
        [
            new Thread(Forward) { IsBackground = true, Name = "relay forward" },
            new Thread(ReadBackward) { IsBackground = true, Name = "relay backward reader" },
            new Thread(SendBackward) { IsBackground = true, Name = "relay backward sender" },
        ];
        foreach (Thread thread in _threads)
        {
            thread.Start();
        }
    }

    /// <summary>The source's end (the migration transport); disposing it leaves the socket to the relay.</summary>
    public Stream SourceEnd => new FileDescriptorStream(_source.First, FileAccess.ReadWrite, ownsHandle: false);

    /// <summary>The destination's end; disposing it closes the socket, as a destination that gives up does.</summary>
    public Stream DestinationEnd => new FileDescriptorStream(_destination.Second, FileAccess.ReadWrite, ownsHandle: true);

    /// <summary>Bytes the destination sent back, held or passed.</summary>
    public long BackwardBytes => Interlocked.Read(ref _backwardBytes);

    /// <summary>Bytes the destination sent back that are held at the gate.</summary>
    public long HeldBytes => BackwardBytes - Interlocked.Read(ref _passedBytes);

    /// <summary>Lets the destination → source bytes through, those held first.</summary>
    public void Release() => _open.Set();

    private void Forward()
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = _source.Second.Read(buffer)) > 0)
            {
                _destination.First.WriteAll(buffer.AsSpan(0, read));
            }
        }
        catch (NativeCallException)
        {
            // A side went away: this direction ends.
        }
        finally
        {
            _destination.First.TryShutdownSocket();
        }
    }

    private void ReadBackward()
    {
        byte[] buffer = new byte[4096];
        try
        {
            int read;
            while ((read = _destination.First.Read(buffer)) > 0)
            {
                Interlocked.Add(ref _backwardBytes, read);
                _backward.Add(buffer[..read]);
            }
        }
        catch (NativeCallException)
        {
            // A side went away: this direction ends.
        }
        finally
        {
            _backward.Add(null);
        }
    }

    private void SendBackward()
    {
        _open.Wait();
        try
        {
            foreach (byte[]? piece in _backward.GetConsumingEnumerable())
            {
                if (piece is null)
                {
                    break;
                }

                _source.Second.WriteAll(piece);
                Interlocked.Add(ref _passedBytes, piece.Length);
            }
        }
        catch (NativeCallException)
        {
            // The source went away.
        }
        finally
        {
            _source.Second.TryShutdownSocket();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _open.Set();
        _source.First.TryShutdownSocket();
        _source.Second.TryShutdownSocket();
        _destination.First.TryShutdownSocket();
        _destination.Second.TryShutdownSocket();
        foreach (Thread thread in _threads)
        {
            thread.Join();
        }

        _source.Dispose();
        _destination.Dispose();
        _open.Dispose();
        _backward.Dispose();
    }
}
