// Package entraemu is a local emulator of the Microsoft Entra ID endpoints that
// MSAL Go, msal-browser and protected web APIs use. It lets the whole system run
// and be tested with no tenant and no internet.
package entraemu
