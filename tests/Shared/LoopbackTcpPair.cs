using System.Net;
using System.Net.Sockets;

namespace MiniVmm.Tests.Shared;

/// <summary>
/// Two connected TCP sockets over loopback, made the plain synchronous way (blocking sockets).
/// One source file, linked into each test project that needs a real socket pair.
/// </summary>
internal static class LoopbackTcpPair
{
    /// <summary>A connected pair: the connecting socket and the accepted one; the caller disposes both.</summary>
    public static (Socket Sender, Socket Receiver) Connect()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        sender.Connect(listener.LocalEndPoint!);
        return (sender, listener.Accept());
    }
}
