//! The app's windows as the X server sees them, and the close request a window manager sends
//! (WM_DELETE_WINDOW): how the tests close the window without WebDriver, whose session ends
//! the app with its last window.

use std::ffi::{CStr, CString};
use std::ptr;

use x11::xlib;

pub struct X {
    dpy: *mut xlib::Display,
}

/// A window can vanish between listing it and reading it (BadWindow): Xlib's default handler
/// would exit the test process; such an error only means the window is gone.
unsafe extern "C" fn ignore_errors(_: *mut xlib::Display, _: *mut xlib::XErrorEvent) -> std::os::raw::c_int {
    0
}

impl X {
    pub fn open(display: &str) -> X {
        unsafe { xlib::XSetErrorHandler(Some(ignore_errors)) };
        let name = CString::new(display).unwrap();
        let dpy = unsafe { xlib::XOpenDisplay(name.as_ptr()) };
        assert!(!dpy.is_null(), "cannot open X display {display}");
        X { dpy }
    }

    fn children(&self, w: xlib::Window) -> Vec<xlib::Window> {
        let (mut root, mut parent, mut kids, mut n) = (0, 0, ptr::null_mut(), 0u32);
        let ok = unsafe { xlib::XQueryTree(self.dpy, w, &mut root, &mut parent, &mut kids, &mut n) };
        if ok == 0 || kids.is_null() {
            return Vec::new();
        }
        let out = unsafe { std::slice::from_raw_parts(kids, n as usize) }.to_vec();
        unsafe { xlib::XFree(kids.cast()) };
        out
    }

    fn name(&self, w: xlib::Window) -> Option<String> {
        let mut name = ptr::null_mut();
        if unsafe { xlib::XFetchName(self.dpy, w, &mut name) } == 0 || name.is_null() {
            return None;
        }
        let s = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
        unsafe { xlib::XFree(name.cast()) };
        Some(s)
    }

    fn viewable(&self, w: xlib::Window) -> bool {
        let mut attrs: xlib::XWindowAttributes = unsafe { std::mem::zeroed() };
        let ok = unsafe { xlib::XGetWindowAttributes(self.dpy, w, &mut attrs) };
        // A failed call leaves `attrs` zeroed: not viewable.
        ok != 0 && attrs.map_state == xlib::IsViewable
    }

    /// Shown top-level windows titled `title` (no window manager here: they are the root's
    /// children).
    pub fn shown(&self, title: &str) -> Vec<xlib::Window> {
        unsafe { xlib::XSync(self.dpy, xlib::False) };
        let root = unsafe { xlib::XDefaultRootWindow(self.dpy) };
        self.children(root)
            .into_iter()
            .filter(|w| self.name(*w).as_deref() == Some(title) && self.viewable(*w))
            .collect()
    }

    /// Asks the window to close, as a window manager's close button does.
    pub fn request_close(&self, w: xlib::Window) {
        unsafe {
            let protocols = xlib::XInternAtom(self.dpy, c"WM_PROTOCOLS".as_ptr(), xlib::False);
            let delete = xlib::XInternAtom(self.dpy, c"WM_DELETE_WINDOW".as_ptr(), xlib::False);
            let mut ev: xlib::XClientMessageEvent = std::mem::zeroed();
            ev.type_ = xlib::ClientMessage;
            ev.window = w;
            ev.message_type = protocols;
            ev.format = 32;
            ev.data.set_long(0, delete as std::os::raw::c_long);
            ev.data.set_long(1, xlib::CurrentTime as std::os::raw::c_long);
            let mut event = xlib::XEvent { client_message: ev };
            xlib::XSendEvent(self.dpy, w, xlib::False, xlib::NoEventMask, &mut event);
            xlib::XFlush(self.dpy);
        }
    }
}

impl Drop for X {
    fn drop(&mut self) {
        unsafe { xlib::XCloseDisplay(self.dpy) };
    }
}
